"""Handlers that ship with staticlambda; `handlers.echo.handler` is the default of every build."""
