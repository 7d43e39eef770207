-- Workload 3: alternate between the Flask app's Jinja page and its JSON
-- route. Both requests are built once per wrk thread.
local reqs
local i = 0

init = function(args)
  reqs = {
    wrk.format("GET", "/page/bench"),
    wrk.format("GET", "/api/items/20"),
  }
end

request = function()
  i = i + 1
  return reqs[(i % 2) + 1]
end
