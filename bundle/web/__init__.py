"""A web page for asking questions about a volume: ``python -m bundle.web``.

The page is a small Starlette app (:mod:`bundle.web.app`) over the same
:class:`bundle.session.Session` as the terminal chat, so the model is built once and each volume's
slice encodings are computed once per web session. Slice views are drawn on the server
(:mod:`bundle.web.views`), uploads are kept in each web session's own folder
(:mod:`bundle.web.uploads`), and the page itself is plain HTML and JavaScript served from
``bundle/web/static`` (nothing is fetched from elsewhere).
"""
