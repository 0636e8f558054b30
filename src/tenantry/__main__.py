from tenantry.cli import app

app()
