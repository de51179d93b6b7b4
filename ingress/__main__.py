"""`python -m ingress …` is `kokoa ingress …`."""

from ingress.cli import app

app(prog_name="kokoa ingress")
