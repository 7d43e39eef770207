"""A Flask app made by a factory, for the gunicorn-compatibility tests:

    hornbeam 'factory_app:create_app()'
    hornbeam "factory_app:create_app('hi', punct='?')"

Routes: /            GREETING + PUNCT from the factory's arguments
        /env/NAME    the worker's os.environ[NAME] ("" if unset)
        /cwd         the worker's working directory
        /pid         the worker's pid
        /where       the request's SCRIPT_NAME and PATH_INFO
"""

import os

from flask import Flask, request


def create_app(greeting="hello from the factory", punct=""):
    app = Flask(__name__)

    @app.route("/")
    def index():
        return greeting + punct

    @app.route("/env/<name>")
    def env(name):
        return os.environ.get(name, "")

    @app.route("/cwd")
    def cwd():
        return os.getcwd()

    @app.route("/pid")
    def pid():
        return str(os.getpid())

    @app.route("/where")
    def where():
        return "%s|%s" % (request.environ.get("SCRIPT_NAME"), request.environ.get("PATH_INFO"))

    return app


not_callable = 42


def returns_none():
    return None
