"""lngate: a Lightning invoicing gateway with provider failover and verified settlement."""

__version__ = "0.1.0"
