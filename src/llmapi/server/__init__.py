"""The HTTP server under the app: uvicorn, with the connection limits it lacks."""
