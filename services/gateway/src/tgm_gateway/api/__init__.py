"""The gateway's edges: HTTP, the seed's IPC envelope (over HTTP and WebSocket), WebSocket event push
and SSE streams. Every command goes through `Dispatcher.run` (dispatch.py)."""
