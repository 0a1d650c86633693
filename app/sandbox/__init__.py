"""The sandbox payment provider: a stand-in third party served by the same app under /sandbox.

It knows nothing of orders and imports nothing of the shop; the shop reaches it over HTTP only.
`app.sandbox.web.init_sandbox` puts its blueprints on a Flask app.
"""
