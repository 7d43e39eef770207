package asgi

// The messages between Go and the worker's event loop, defined once per
// side: here and in python/hornbeam/_asgi.py (same numbers, same fields).
// Each is a tuple whose first two items are the kind and the stream id.
//
// Go -> Python events reach the loop in batches: post appends them to a
// queue and writes to an eventfd; the loop's reader on it calls pull.
const (
	evHTTP       = 1  // scope, body, more_body
	evBody       = 2  // body, more_body
	evDisconnect = 3  // the client is gone, or the response is over
	evCredit     = 4  // send() may go on
	evWS         = 5  // scope
	evWSMsg      = 6  // is_text, data
	evWSClosed   = 7  // code, reason
	evCancel     = 8  // the request timed out: cancel its task
	evLifespan   = 9  // "startup" or "shutdown"
	evStop       = 10 // stop the loop
	evPing       = 11 // answer opPong
	evPublish    = 12 // topic, is_text, data (for subscribe() iterators)
)

// Python -> Go ops, through emit on the loop's thread.
const (
	opStart     = 1  // status, headers, trailers
	opBody      = 2  // body, more_body
	opHint      = 3  // links
	opTrailers  = 4  // headers, more_trailers
	opFile      = 5  // path
	opAccept    = 6  // subprotocol, headers
	opWSSend    = 7  // is_text, data
	opWSClose   = 8  // code, reason
	opDone      = 9  // error text or None
	opWant      = 10 // the next body chunk or message may come
	opLifespan  = 11 // phase, outcome, message
	opPong      = 12
	opZeroCopy  = 14 // fd (a dup, Go closes it), offset, count (-1: to the end), more_body
	opSubscribe = 13 // topic, on: stream 0 for subscribe(), else a WebSocket (ws_subscribe)
)
