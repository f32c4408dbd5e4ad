"""The one error type of the geo package: a machine-readable code, a message and a place."""

from __future__ import annotations

__all__ = ["GeoError"]


class GeoError(ValueError):
    """Invalid geometric input, with a stable ``code`` and a JSON-serialisable ``where``.

    ``where`` locates the problem: a JSON path into the submitted GeoJSON
    (``{"path": "coordinates[0][3][1]"}``), a point in degrees
    (``{"lon": 13.4, "lat": 52.5}``), both, or ``None`` when the problem concerns the
    whole input.

    >>> err = GeoError("ring_not_closed", "ring coordinates[0] is not closed",
    ...                {"path": "coordinates[0]"})
    >>> err.code, err.where
    ('ring_not_closed', {'path': 'coordinates[0]'})
    >>> str(err)
    'ring coordinates[0] is not closed'
    >>> isinstance(err, ValueError)
    True
    >>> err.to_dict()["code"]
    'ring_not_closed'
    """

    def __init__(self, code: str, message: str, where: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"GeoError({self.code!r}, {self.message!r}, {self.where!r})"

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.where))

    def to_dict(self) -> dict:
        """The error as ``{"code", "message", "where"}`` (the body of the API's error shape)."""
        return {"code": self.code, "message": self.message, "where": self.where}
