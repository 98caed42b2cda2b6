from .app import runtime

if __name__ == "__main__":
    runtime.run()
