"""HTTP interface: FastAPI routes kept thin (parse, call one service, map errors)."""

from lngate.web.fastapi_compat import check_pydantic_v1_models_lazily

# before any route module registers its routes: FastAPI checks their parameters as they are
check_pydantic_v1_models_lazily()
