from tenantry.cli import app

# Guarded: worker processes (multiprocessing "spawn") import this module as `__mp_main__`.
if __name__ == "__main__":
    app()
