"""The staff console: a web application under ``/admin`` for the people who run the bot.

Server-rendered pages (Jinja2 through aiohttp-jinja2, autoescaped), every asset served by
the bot itself, working without JavaScript (``static/console.js`` only adds a character
counter and confirmations). One module per area: ``auth`` (sign-in, sign-out, password),
``home``, ``inbox`` and ``item`` (citizens' feedback), ``stats``, ``accounts`` and ``audit``
(admins); ``guard`` holds the session, CSRF and header rules every request goes through,
``render`` what every page gets. Pages only parse input, call the same use cases as the CLI
(``bot.accounts``, ``bot.signin``, ``bot.feedback_desk``) as the signed-in account, and
present the result.
"""
