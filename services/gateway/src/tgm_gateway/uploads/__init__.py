"""Uploads of files too large for one NATS message (issue 13: large payloads), into the `tgm_uploads`
object store: `handlers.py` is the route, `service.py` names and limits them, `store.py` writes them."""
