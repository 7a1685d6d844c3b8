"""SQLAlchemy Core statements run straight on a sqlite3 connection, for the hot paths.

Executing a prebuilt statement through SQLAlchemy costs about 36 µs of Python (execution
context, parameter processing, result metadata) around 6 µs of SQLite. The services build their
hot statements once, at import; the second time one of them is executed here it is compiled
once more into a plan (SQL text, parameter order with SQLAlchemy's own bind processors and
Python-side column defaults, row type with its result processors), and from then on it runs as
`sqlite3.Connection.execute(sql, values)`. Anything a plan does not cover (statements built per
call, expanding IN lists, RETURNING, executemany) keeps going through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final, cast

from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault
from sqlalchemy.sql.type_api import TypeEngine

_CAPACITY: Final = 1024  # statements remembered; the services have a few dozen hot ones
_Processor = Callable[[Any], Any]


class _Unsupported(Exception):
    pass


class _Param:
    __slots__ = ("constant", "default", "key", "process")

    def __init__(
        self,
        key: str,
        process: _Processor | None,
        constant: tuple[Any] | None,
        default: Callable[[Any], Any] | None,
    ) -> None:
        self.key = key
        self.process = process
        self.constant = constant  # (value,) for a value bound in the statement itself
        self.default = default  # a Python-side column default, when no value is given


class _Plan:
    __slots__ = ("params", "processors", "row", "sql")

    def __init__(
        self,
        sql: str,
        params: list[_Param],
        row: Callable[..., Any] | None,
        processors: list[_Processor | None] | None,
    ) -> None:
        self.sql = sql
        self.params = params
        self.row = row
        self.processors = processors

    def values(self, parameters: Mapping[str, Any]) -> list[Any]:
        out = []
        for p in self.params:
            if p.key in parameters:
                value = parameters[p.key]
            elif p.constant is not None:
                value = p.constant[0]
            elif p.default is not None:
                value = p.default(None)
            else:
                raise _Unsupported(p.key)  # SQLAlchemy reports the missing value
            out.append(value if p.process is None else p.process(value))
        return out

    def make_row(self, raw: tuple[Any, ...]) -> Any:
        assert self.row is not None
        if self.processors is None:
            return self.row(*raw)
        pairs = zip(self.processors, raw, strict=True)
        return self.row(*(v if f is None else f(v) for f, v in pairs))


class _Row:
    """What rows of every plan have besides their fields (SQLAlchemy's `Row._mapping`)."""

    __slots__ = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return self._asdict()  # type: ignore[attr-defined, no-any-return]


def _plan(statement: Executable, keys: tuple[str, ...] | None, dialect: Dialect) -> _Plan:
    """`keys`: the parameters' names, which decide the columns of an INSERT or UPDATE."""
    if not isinstance(statement, ClauseElement):
        raise _Unsupported("not a SQL expression")
    compiled = statement.compile(dialect=dialect, column_keys=None if keys is None else list(keys))
    if not isinstance(compiled, SQLCompiler) or not compiled.positional:
        raise _Unsupported("not a positional SQL statement")
    if compiled.post_compile_params or compiled.literal_execute_params:
        raise _Unsupported("expanding or literal parameters")
    if compiled.update_prefetch or getattr(compiled, "effective_returning", None):
        raise _Unsupported("update defaults or RETURNING")
    prefetch = {c.key: c for c in compiled.insert_prefetch}
    processors = compiled._bind_processors
    params = []
    for name in compiled.positiontup or ():
        default = None
        constant = None
        if name in prefetch:
            column_default = prefetch[name].default
            if isinstance(column_default, CallableColumnDefault):
                default = column_default.arg
            elif isinstance(column_default, ScalarElementColumnDefault):
                constant = (column_default.arg,)
            else:
                raise _Unsupported("a column default that is neither a value nor a callable")
        else:
            bind = compiled.binds[name]
            # A value bound in the statement itself (None too: `.values(x=None)`), unless
            # the parameters give one.
            if not bind.required or bind.callable is not None:
                constant = (bind.effective_value,)
        bound = processors.get(name)
        if bound is not None and not callable(bound):
            raise _Unsupported("a tuple parameter")
        process: _Processor | None = bound
        if bound is not None and _is_plain_datetime(compiled.binds[name].type, dialect, bound):
            process = _datetime_text(bound)
        params.append(_Param(name, process, constant, default))
    columns = compiled._result_columns
    if not columns:
        return _Plan(compiled.string, params, None, None)
    names = [c[0] for c in columns]
    try:
        fields: type = namedtuple("Row", names)  # type: ignore[misc]  # names known at run time
    except ValueError:  # a duplicate, a keyword or a leading underscore
        raise _Unsupported("column names a tuple cannot have") from None
    row_type = type("Row", (_Row, fields), {"__slots__": ()})
    row_processors = [c[3]._cached_result_processor(dialect, None) for c in columns]
    if all(f is None for f in row_processors):
        return _Plan(compiled.string, params, row_type, None)
    return _Plan(compiled.string, params, row_type, cast(list[_Processor | None], row_processors))


def _is_plain_datetime(type_: TypeEngine[Any], dialect: Dialect, process: _Processor) -> bool:
    """SQLite's DATETIME whose processor `process` writes the text `_isoformat_text` does
    (SQLAlchemy's default storage format; checked on samples, not read from its internals)."""
    if type(type_.dialect_impl(dialect)) is not sqlite.DATETIME:
        return False
    try:
        return all(process(sample) == _isoformat_text(sample) for sample in _SAMPLES)
    except Exception:  # noqa: BLE001  (a processor that refuses a datetime is not the default)
        return False


_SAMPLES: Final = (
    datetime(2001, 2, 3, 4, 5, 6, 7),
    datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5))),
)
_DATETIME_TEXT: Final = len("YYYY-MM-DD HH:MM:SS.ffffff")


def _isoformat_text(value: datetime) -> str:
    return value.isoformat(" ", "microseconds")[:_DATETIME_TEXT]


def _datetime_text(process: _Processor) -> _Processor:
    """SQLAlchemy's processor for SQLite DATETIME parameters, its text ("YYYY-MM-DD
    HH:MM:SS.ffffff", any zone dropped) made by datetime's C isoformat for datetimes, in 1.5 µs
    instead of 3.5: a push binds a handful of them. Anything else goes to `process`."""

    def datetime_text(value: Any) -> Any:
        if type(value) is datetime:
            return _isoformat_text(value)
        return process(value)

    return datetime_text


class Statements:
    """Plans for the statements one sqlite3 connection runs, keyed by statement object."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._seen: dict[tuple[int, tuple[str, ...] | None], Executable] = {}
        self._plans: dict[tuple[int, tuple[str, ...] | None], tuple[Executable, _Plan | None]] = {}

    def plan(self, statement: Executable, parameters: Mapping[str, Any]) -> _Plan | None:
        """The plan for `statement`, or None: run it through SQLAlchemy this time."""
        key = (id(statement), tuple(parameters) if isinstance(statement, UpdateBase) else None)
        found = self._plans.get(key)
        if found is not None and found[0] is statement:
            return found[1]
        if self._seen.get(key) is not statement:
            # Once is not yet hot: a statement built per call is never seen again, and is
            # better compiled through SQLAlchemy's cache than planned here.
            if len(self._seen) >= _CAPACITY:
                self._seen.clear()
            self._seen[key] = statement  # held, so its id is not reused while remembered
            return None
        try:
            plan: _Plan | None = _plan(statement, key[1], self._dialect)
        except _Unsupported:
            plan = None
        if len(self._plans) >= _CAPACITY:
            self._plans.clear()
        self._plans[key] = (statement, plan)
        return plan


class DirectResult:
    """The part of SQLAlchemy's CursorResult that registry.db.Result promises."""

    __slots__ = ("_cursor", "_plan", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor, plan: _Plan) -> None:
        self._cursor = cursor
        self._plan = plan
        self.rowcount: int = cursor.rowcount

    def __iter__(self) -> Iterator[Any]:
        make = self._plan.make_row
        for raw in self._cursor:
            yield make(raw)

    def _next(self) -> Any | None:
        raw = self._cursor.fetchone()
        return None if raw is None else self._plan.make_row(raw)

    def first(self) -> Any | None:
        row = self._next()
        self._cursor.close()
        return row

    def one_or_none(self) -> Any | None:
        row = self._next()
        if row is not None and self._cursor.fetchone() is not None:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        self._cursor.close()
        return row

    def one(self) -> Any:
        row = self.one_or_none()
        if row is None:
            raise NoResultFound("No row was found when one was required")
        return row

    def all(self) -> Sequence[Any]:
        make = self._plan.make_row
        return [make(raw) for raw in self._cursor.fetchall()]

    fetchall = all

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> DirectScalars:
        return DirectScalars(self)


class DirectScalars:
    __slots__ = ("_result",)

    def __init__(self, result: DirectResult) -> None:
        self._result = result

    def __iter__(self) -> Iterator[Any]:
        for row in self._result:
            yield row[0]

    def all(self) -> Sequence[Any]:
        return [row[0] for row in self._result.all()]

    def first(self) -> Any:
        return self._result.scalar()

    def one(self) -> Any:
        return self._result.scalar_one()

    def one_or_none(self) -> Any:
        return self._result.scalar_one_or_none()


def execute(
    conn: Connection, statements: Statements, statement: Executable, parameters: Mapping[str, Any]
) -> DirectResult | None:
    """Run `statement` on `conn`'s sqlite3 connection when it has a plan; None when it must
    go through SQLAlchemy."""
    plan = statements.plan(statement, parameters)
    if plan is None:
        return None
    try:
        values = plan.values(parameters)
    except _Unsupported:
        return None
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    try:
        cursor = raw.execute(plan.sql, values)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(
            plan.sql, values, exc, sqlite3.Error, dialect=conn.dialect
        ) from exc
    return DirectResult(cursor, plan)
