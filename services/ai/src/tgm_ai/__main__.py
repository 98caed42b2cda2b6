from .app import runtime

runtime.run()
