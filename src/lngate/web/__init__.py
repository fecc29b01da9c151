"""HTTP interface: FastAPI routes kept thin (parse, call one service, map errors)."""
