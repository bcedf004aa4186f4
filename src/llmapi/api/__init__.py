"""HTTP only: dependencies, routers, streaming, middleware. No model logic lives here."""
