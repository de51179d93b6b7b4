"""`kokoa admin`: the operators' command-line client of the control plane's REST API.

    errors.py    the typed failures and their exit codes (1 API, 2 usage, 3 unreachable)
    config.py    where the URL and token come from (the 0600 file, or KOKOA_URL/KOKOA_TOKEN)
    client.py    HTTP: bearer auth, TLS, problem+json errors, pagination
    output.py    tables and JSON
    session.py   what every command shares: the client, the organisation, the output format
    cli.py       the root: login, logout, orgs, and the sub-commands below
    resources.py what services, nodes and agents share (show, enable, disable, delete, enroll)
    services.py, nodes.py, agents.py   their list, create and update
    certificates.py   public (HTTPS) certificates: list, show, upload, replace, delete
    people.py    API tokens and members

Only the standard library, typer, httpx and rich are imported: never FastAPI or SQLAlchemy.
"""
