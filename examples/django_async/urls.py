from django.urls import path

from . import views

urlpatterns = [
    path("__ready__", views.ready),
    path("async/<int:n>", views.async_view),
    path("sync/<str:word>", views.sync_view),
    path("json", views.json_view),
    path("upload", views.upload),
    path("notify/<str:room>", views.notify),
    path("boom", views.boom),
]
