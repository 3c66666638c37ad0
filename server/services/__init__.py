"""Domain services: plain functions over a SQLAlchemy session that enforce the warehouse
rules (catalog, the stock ledger, receipts, transfers, users). Routes only translate."""
