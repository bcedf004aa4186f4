"""One repository per aggregate. Each takes the AsyncSession of the caller's unit of work and never commits:
`async with database.session() as session:` decides when the work is done.
"""
