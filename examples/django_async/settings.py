"""Settings of the minimal Django project in examples/django_async (see
asgi.py for the command line): no database, Channels' in-memory layer."""

SECRET_KEY = "hornbeam-example-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "django_async.urls"
INSTALLED_APPS = ["channels"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {}
USE_TZ = True
ASGI_APPLICATION = "django_async.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Django refuses a request.body over 2.5 MB by default; the upload test
# sends less, this leaves room.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 << 20
# Errors (500s) with their traceback on stderr, which hornbeam logs.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}
