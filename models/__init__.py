"""Tables, the queries over them, and migrations."""
