"""`vpa`: the command-line client of the vpa service.

A client only: it talks to the HTTP API and the WebSockets, and imports nothing of the
service's packages. Modules: main (the commands), keys (`vpa keys ...`), client (the HTTP
API over httpx), follow (a job's live updates over its WebSocket, resumed after a drop),
progress (the progress bars), download (artifacts to a directory), render (tables),
options (`-o key=value`, URL or file), errors (messages and exit codes).
"""
