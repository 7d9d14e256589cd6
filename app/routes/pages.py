ROUTES: list = []
EXCEPTION_HANDLERS: dict = {}
