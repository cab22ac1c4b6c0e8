"""Records to typed tables: explicit pyarrow schemas, normalisers, and the atomic Parquet writer."""
