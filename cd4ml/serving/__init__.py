"""The model server: create_app (app.py), the JSON API (api.py), the page (web.py), the model store
(model_store.py) and the gunicorn runner (gunicorn_app.serve). Importing this package starts nothing."""
