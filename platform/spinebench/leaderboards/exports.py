"""Helpers of the leaderboard exports."""

#: A spreadsheet treats a cell starting with one of these as a formula (or, for tab and carriage return, strips
#: them and may then see one): `=HYPERLINK(...)` as a participant name would run when an organizer opens the CSV.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_csv_cell(value):
    """The value as written to a CSV cell: text that a spreadsheet would read as a formula gets a leading
    apostrophe (the OWASP "CSV injection" rule); numbers, booleans and None are left as they are, so a negative
    metric value stays a number."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
