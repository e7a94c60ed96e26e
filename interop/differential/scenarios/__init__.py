"""The scenarios of the differential suite, one module per area; each
module registers its scenarios with `@scenario` when imported. Add a
module here to add its scenarios."""

from . import basic, broker, meta, rust_client, testament  # noqa: F401
