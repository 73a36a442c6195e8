"""``DynamoDBSagaStore``: the saga-bus ``SagaStore`` calls over one DynamoDB table."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Literal

from pynamodb.connection import Connection
from typing_extensions import Self, TypeVar

from . import _modify, _telemetry
from ._connection import (
    CredentialsOption,
    StoreConnection,
    check_endpoint,
    check_table_name,
    configured_region,
    meta_credentials,
    redact_endpoint,
    to_credentials,
)
from ._dispatch import DEFAULT_POLICY, ConditionFailed, RequestObserver, dispatch
from ._model_info import ADD_INCARNATION, FIXED_SETS, ModelInfo, model_info
from ._modify import DEFAULT_BASE_DELAY, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DELAY
from ._operations import OperatorCalls, SagaPage, load_state
from ._size import ITEM_SIZE_LIMIT
from ._steps import Call, Send, Steps
from ._tokens import (
    HISTORY,
    INCARNATION,
    TOKEN_RESERVE,
    incarnation_of,
    insert_landed,
    new_token,
    set_incarnation,
    slot_for,
    stored_incarnation,
    update_landed,
)
from ._transport import TRANSPORTS, HttpTransport
from ._validation import MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, check_key, check_version
from .errors import (
    ConcurrencyError,
    SagaAlreadyExistsError,
    SagaNotFoundError,
    SagaStoreUnavailableError,
    SagaTooLargeError,
    SagaValidationError,
    UnresolvedWrite,
)
from .models import SagaModel, utc_now
from .retry import RetryPolicy
from .views import SagaView

__all__ = ["DynamoDBSagaStore", "SagaPage", "correlation_saga_id"]

M = TypeVar("M", bound=SagaModel, default=SagaModel)
V = TypeVar("V", bound=SagaModel)
T = TypeVar("T")

#: The longest ``ttl_days`` accepted (100 years): beyond it an expiry is not a cleanup policy.
MAX_TTL_DAYS = 36_500

#: The index ``get_by_correlation_id`` queries.
CORRELATION_INDEX = "correlationIndex"


def _check_model(field: str, model: Any) -> type[SagaModel]:
    if not (isinstance(model, type) and issubclass(model, SagaModel)):
        raise SagaValidationError(field, f"must be a SagaModel subclass, got {model!r}")
    return model


class DynamoDBSagaStore(OperatorCalls[M]):
    """Saga state store over one DynamoDB table, one request per call.

    :param model: the ``SagaModel`` subclass used for saga names not listed in ``models``;
        its ``Meta`` supplies the defaults for table, region, endpoint and timeouts.
    :param models: saga name -> model class, for tables shared by several saga types.
    :param table_name: overrides ``model.Meta.table_name``.
    :param region: overrides ``model.Meta.region``.
    :param endpoint: a custom endpoint URL (DynamoDB Local, LocalStack); overrides
        ``model.Meta.host``.
    :param credentials: a botocore ``Credentials`` object (e.g.
        ``boto3.Session(profile_name="production").get_credentials()``, which keeps
        refreshing) or a mapping with ``aws_access_key_id``, ``aws_secret_access_key`` and
        optionally ``aws_session_token``. Default: botocore's usual credential chain.
    :param connection: an existing PynamoDB ``Connection`` to reuse (the seed's ``client``
        option); it already fixes region, endpoint and credentials, so those options must be
        left unset.
    :param ttl_days: when set, a completed saga gets ``ttl = updated_at + ttl_days`` and a
        saga that is not completed carries no ``ttl``; when unset the store leaves ``ttl``
        as the state has it.
    :param connect_timeout_seconds: connect timeout of the connection (default: the
        model's ``Meta``, else PynamoDB's settings).
    :param read_timeout_seconds: read timeout of the connection (same defaults).
    :param max_pool_connections: HTTP connection pool size (same defaults); make it at least
        the number of threads sharing the store.
    :param retry: how throttling, server errors and dropped connections are retried
        (default ``RetryPolicy()``: 5 attempts, exponential backoff with full jitter). The
        store retries by itself and turns botocore's retries off on connections it creates,
        so that a write whose response was lost is recognised by its write token instead of
        being reported as a conflict.
    :param read_on_conflict: after a failed conditional write, read the item (one
        consistent GetItem) to tell a conflict from a missing saga. Only for a backend that
        ignores ``ReturnValuesOnConditionCheckFailure``; DynamoDB, DynamoDB Local, LocalStack
        and moto return the stored item with the failure, so by default no read is needed.
    :param unique_correlation: at most one saga per ``(saga_name, correlation_id)``, enforced
        by DynamoDB: a saga's id is derived from its correlation id
        (``correlation_saga_id()``), so a second insert fails the key condition however
        many workers race, and ``get_by_correlation_id`` is a strongly consistent GetItem.
        See ``docs/unique-correlation.md``.
    :param correlation_fallback: with ``unique_correlation``, a correlation id not found by
        key is looked up in the ``correlationIndex`` GSI too, so sagas inserted before the
        option was turned on are still found (one more request, only on that path). Turn
        it off once no such sagas remain.
    :param transport: ``"http"`` (the default) sends GetItem, PutItem, UpdateItem,
        DeleteItem and Query through the store's own SigV4-signed keep-alive HTTP pool, for a
        fraction of botocore's client CPU, with the same retries and errors; a request is
        still sent by botocore while moto's in-process mock is active, or when the endpoint
        needs what only botocore honours. ``"botocore"`` sends everything through the
        botocore client, for botocore's event hooks and instrumentation; it is the default
        with ``connection``, which ``"http"`` cannot be combined with. See
        ``docs/configuration.md``, "Transports".
    :raises SagaValidationError: on a conflicting or incomplete configuration. Nothing is
        sent to AWS until the first call.
    """

    def __init__(
        self,
        model: type[M] = SagaModel,  # type: ignore[assignment]
        *,
        models: Mapping[str, type[SagaModel]] | None = None,
        table_name: str | None = None,
        region: str | None = None,
        endpoint: str | None = None,
        credentials: CredentialsOption | None = None,
        connection: Connection | None = None,
        ttl_days: float | None = None,
        connect_timeout_seconds: float | None = None,
        read_timeout_seconds: float | None = None,
        max_pool_connections: int | None = None,
        read_on_conflict: bool = False,
        retry: RetryPolicy | None = None,
        unique_correlation: bool = False,
        correlation_fallback: bool = True,
        transport: Literal["botocore", "http"] | None = None,
    ) -> None:
        self._model: type[M] = _check_model("model", model)  # type: ignore[assignment]
        self._models: dict[str, type[SagaModel]] = {}
        if models is not None and not isinstance(models, Mapping):
            raise SagaValidationError(
                "models",
                "must be a mapping of saga name to SagaModel subclass, e.g. "
                f"{{'OrderSaga': OrderSaga}}, got {type(models).__name__}",
            )
        for name, cls in (models or {}).items():
            check_key("models key", name, MAX_PARTITION_KEY_BYTES)
            self._models[name] = _check_model(f"models[{name!r}]", cls)
        every_model: list[type[SagaModel]] = [self._model, *self._models.values()]
        for each in every_model:
            model_info(each)  # fail now, not at the first request, on a broken model

        # With only `models`, their Meta (not the base SagaModel's) gives the defaults.
        meta_model: type[SagaModel] = model
        if model is SagaModel and self._models:
            meta_model = next(iter(self._models.values()))
        meta: Any = meta_model.Meta
        self.table_name: str = check_table_name(
            table_name if table_name is not None else getattr(meta, "table_name", None)
        )
        if table_name is None:
            _check_same_meta(meta_model, every_model, "table_name", self.table_name)

        if ttl_days is not None and (
            isinstance(ttl_days, bool)
            or not isinstance(ttl_days, (int, float))
            or not 0 < ttl_days <= MAX_TTL_DAYS
        ):
            raise SagaValidationError(
                "ttl_days",
                f"must be a number of days above 0 and at most {MAX_TTL_DAYS:,}, got {ttl_days!r}",
            )
        self.ttl_days = ttl_days
        self.read_on_conflict = bool(read_on_conflict)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise SagaValidationError("retry", f"must be a RetryPolicy, got {type(retry).__name__}")
        self.retry = retry or DEFAULT_POLICY
        self.unique_correlation = bool(unique_correlation)
        self.correlation_fallback = bool(correlation_fallback)
        self._ttl_delta = None if ttl_days is None else timedelta(days=ttl_days)
        if transport is None:
            transport = "botocore" if connection is not None else "http"
        if not isinstance(transport, str) or transport not in TRANSPORTS:
            raise SagaValidationError(
                "transport", f"must be one of {', '.join(map(repr, TRANSPORTS))}, got {transport!r}"
            )
        if transport == "http" and connection is not None:
            raise SagaValidationError(
                "transport",
                "transport='http' cannot send through a passed connection (a botocore client, "
                "with its own settings): leave transport unset or pass the options instead",
            )
        self.transport: str = transport
        #: Called with (operation, request) before each attempt the store sends.
        self._request_observers: tuple[RequestObserver, ...] = ()
        self._http: HttpTransport | None = None

        connection_options = {
            "region": region,
            "endpoint": endpoint,
            "credentials": credentials,
            "connect_timeout_seconds": connect_timeout_seconds,
            "read_timeout_seconds": read_timeout_seconds,
            "max_pool_connections": max_pool_connections,
        }
        for name in ("connect_timeout_seconds", "read_timeout_seconds"):
            value = connection_options[name]
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            ):
                raise SagaValidationError(name, f"must be a positive number, got {value!r}")
        if max_pool_connections is not None and (
            type(max_pool_connections) is not int or max_pool_connections < 1
        ):
            raise SagaValidationError(
                "max_pool_connections", f"must be an int >= 1, got {max_pool_connections!r}"
            )
        if connection is not None:
            conflicting = [k for k, v in connection_options.items() if v is not None]
            if conflicting:
                raise SagaValidationError(
                    "connection",
                    f"an existing connection already fixes {', '.join(conflicting)}; "
                    "pass either connection or those options",
                )
            if not isinstance(connection, Connection):
                raise SagaValidationError(
                    "connection",
                    f"must be a pynamodb.connection.Connection, got {type(connection).__name__}",
                )
            if isinstance(connection.host, str) and "@" in connection.host:
                raise SagaValidationError(
                    "connection",
                    f"its host {redact_endpoint(connection.host)!r} has user-info "
                    "(user:password@), which DynamoDB never reads",
                )
            self.connection: Connection = connection
            self._owns_connection = False
        else:
            if region is not None and (not isinstance(region, str) or not region):
                raise SagaValidationError("region", f"must be a non-empty str, got {region!r}")
            if endpoint is not None:
                host: str | None = check_endpoint(endpoint)
            elif meta.host is not None:
                host = check_endpoint(meta.host, f"{meta_model.__name__}.Meta.host")
            else:
                host = None
            resolved_region = region or meta.region or configured_region()
            if not resolved_region:
                raise SagaValidationError(
                    "region",
                    "no region: pass region=..., set Meta.region on the model, or set "
                    "AWS_REGION / AWS_DEFAULT_REGION (or a profile's region)",
                )
            if region is None:
                _check_same_meta(meta_model, every_model, "region", resolved_region)
            self.connection = StoreConnection(
                region=resolved_region,
                host=host,
                # The option wins; else Meta's keys, as PynamoDB's own model signs with them.
                credentials=(
                    meta_credentials(meta_model)
                    if credentials is None
                    else to_credentials(credentials)
                ),
                connect_timeout_seconds=_pick(
                    connect_timeout_seconds, meta, "connect_timeout_seconds"
                ),
                read_timeout_seconds=_pick(read_timeout_seconds, meta, "read_timeout_seconds"),
                # The store retries by itself (see retry.py): one botocore attempt each.
                retry_configuration={"total_max_attempts": 1, "mode": "standard"},
                max_pool_connections=_pick(max_pool_connections, meta, "max_pool_connections"),
            )
            self._owns_connection = True
            if transport == "http":
                self._http = HttpTransport(self.connection)

    # -- configuration ---------------------------------------------------------------------

    @property
    def model(self) -> type[M]:
        """The model class used for saga names not listed in ``models``."""
        return self._model

    def model_for(self, saga_name: str) -> type[SagaModel]:
        """The model class that stores ``saga_name``."""
        return self._models.get(saga_name, self._model)

    @property
    def region(self) -> str | None:
        """The AWS region requests go to."""
        return self.connection.region

    @property
    def endpoint(self) -> str | None:
        """The custom endpoint URL, or None for AWS's own."""
        return self.connection.host

    def __repr__(self) -> str:
        # Never show credentials.
        return (
            f"{type(self).__name__}(model={self._model.__name__}, table_name={self.table_name!r}, "
            f"region={self.region!r}, endpoint={self.endpoint!r})"
        )

    def close(self) -> None:
        """Close the HTTP connections of a connection the store created (not a passed one)."""
        if self._owns_connection and isinstance(self.connection, StoreConnection):
            self.connection.close()
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the SagaStore calls ---------------------------------------------------------------

    def get_by_id(self, saga_name: str, saga_id: str) -> M | None:
        """Load a saga by id with a strongly consistent read (one GetItem).

        :returns: the state, or None when no such saga exists.
        :raises SagaValidationError: on an empty, non-str or over-long name or id.
        """
        return self._run(
            self._get_by_id(saga_name, saga_id), "get_by_id", saga_name, saga_id, "GetItem"
        )

    def _get_by_id(self, saga_name: str, saga_id: str) -> Steps[M | None]:
        check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
        check_key("saga_id", saga_id, MAX_SORT_KEY_BYTES)
        model = self.model_for(saga_name)
        info = model_info(model)
        item = yield from self._read_raw(info, saga_name, saga_id)
        return None if item is None else load_state(info, item)  # type: ignore[return-value]

    def get_by_correlation_id(self, saga_name: str, correlation_id: str) -> M | None:
        """Find a saga by correlation id.

        By default one Query on the ``correlationIndex`` GSI, which AWS serves with eventual
        consistency: a saga inserted a moment ago may not be found yet, and if several sagas
        share the correlation id one of them is returned. With ``unique_correlation`` it is
        one strongly consistent GetItem of the derived key, then (``correlation_fallback``)
        the GSI Query only when that finds nothing, or finds a saga whose correlation id is no
        longer ``correlation_id`` (changed by hand or by another tool).

        :returns: the state, or None when none is found.
        :raises SagaValidationError: on an empty, non-str or over-long name or correlation id.
        """
        return self._run(
            self._get_by_correlation_id(saga_name, correlation_id),
            "get_by_correlation_id",
            saga_name,
            None,
            self._correlation_operation(),
        )

    def _correlation_operation(self) -> str | None:
        """The one operation a correlation lookup sends; None when it may send two."""
        if not self.unique_correlation:
            return "Query"
        return None if self.correlation_fallback else "GetItem"

    def _get_by_correlation_id(self, saga_name: str, correlation_id: str) -> Steps[M | None]:
        check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
        check_key("correlation_id", correlation_id, MAX_SORT_KEY_BYTES)
        model = self.model_for(saga_name)
        info = model_info(model)
        if self.unique_correlation:
            saga_id = correlation_saga_id(saga_name, correlation_id)
            item = yield from self._read_raw(info, saga_name, saga_id)
            if item is not None and item.get(info.correlation_id) == {"S": correlation_id}:
                return load_state(info, item)  # type: ignore[return-value]
            if not self.correlation_fallback:
                return None
        response = yield Send(
            "Query",
            {
                "TableName": self.table_name,
                "IndexName": CORRELATION_INDEX,
                "KeyConditionExpression": "#n = :n AND #c = :c",
                "ExpressionAttributeNames": {"#n": info.hash_key, "#c": info.correlation_id},
                "ExpressionAttributeValues": {":n": {"S": saga_name}, ":c": {"S": correlation_id}},
                "Limit": 1,
            },
        )
        items = response.get("Items") or []
        return load_state(info, items[0]) if items else None  # type: ignore[return-value]

    def saga_id_for(self, saga_name: str, correlation_id: str) -> str | None:
        """The id ``insert`` gives a new saga with this correlation id, if the mode fixes it.

        With ``unique_correlation`` it is ``correlation_saga_id()``; otherwise None (a
        fresh uuid4 is assigned).
        """
        if not self.unique_correlation:
            return None
        check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
        check_key("correlation_id", correlation_id, MAX_SORT_KEY_BYTES)
        return correlation_saga_id(saga_name, correlation_id)

    def view(self, model: type[V], *, saga_name: str | None = None) -> SagaView[V]:
        """The calls of one saga type, typed with its model and without ``saga_name``.

        :param model: the model the store uses for that saga type.
        :param saga_name: the saga name; by default the name ``model`` is registered under
            in ``models``, else its class name (required when it is registered under
            several names).
        :raises SagaValidationError: the store does not keep that saga name as ``model``.
        """
        return SagaView(self, model, saga_name)

    def insert(self, saga_name: str, correlation_id: str, state: SagaModel) -> None:
        """Store a new saga at version 0 (one conditional PutItem).

        Sets ``state.saga_name`` and ``state.correlation_id``, assigns ``state.saga_id``
        (a uuid4) when it is unset, fills ``created_at``/``updated_at`` with now (UTC) where
        unset, and sets ``state.version`` to 0.

        :raises SagaAlreadyExistsError: a saga with this name and id exists; it is left as is.
        :raises SagaValidationError: on bad input (nothing is written).
        :raises SagaTooLargeError: when the item exceeds 400 KB (nothing is written).
        """
        self._run(
            self._insert(saga_name, correlation_id, state),
            "insert",
            saga_name,
            getattr(state, "saga_id", None),
            "PutItem",
        )

    def _insert(self, saga_name: str, correlation_id: str, state: SagaModel) -> Steps[None]:
        check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
        check_key("correlation_id", correlation_id, MAX_SORT_KEY_BYTES)
        model = self._check_state(saga_name, state)
        info = model_info(model)
        new_id = self.saga_id_for(saga_name, correlation_id) or str(uuid.uuid4())
        if state.saga_id is not None:
            check_key("state.saga_id", state.saga_id, MAX_SORT_KEY_BYTES)
            if self.unique_correlation and state.saga_id != new_id:
                raise SagaValidationError(
                    "state.saga_id",
                    "with unique_correlation a saga's id is derived from its correlation id; "
                    f"leave it unset or use store.saga_id_for(...) ({new_id!r})",
                )
        if state.version not in (None, 0):
            raise SagaValidationError(
                "state.version", f"a new saga is stored at version 0; got {state.version!r}"
            )
        if state.saga_name is not None and state.saga_name != saga_name:
            raise SagaValidationError(
                "state.saga_name", f"is {state.saga_name!r} but saga_name is {saga_name!r}"
            )

        def prepare() -> None:
            state.saga_name = saga_name
            state.correlation_id = correlation_id
            if state.saga_id is None:
                state.saga_id = new_id
            now = utc_now()
            if state.created_at is None:
                state.created_at = now
            if state.updated_at is None:
                state.updated_at = now
            self._apply_ttl(state)

        # The insert's token is the new incarnation's: no update changes it, so a retry
        # recognises its own landed insert however many writes followed.
        token = new_token()
        item = self._build_item(state, prepare, info, 0, {INCARNATION: token})
        try:
            yield Send(
                "PutItem",
                {
                    "TableName": self.table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": info.range_key},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
                saga_name=saga_name,
                saga_id=state.saga_id,
                write=(0, token),
            )
        except ConditionFailed as exc:
            stored = yield from self._stored_item(exc, info, saga_name, state.saga_id)
            if stored is None or not insert_landed(stored, token):
                raise SagaAlreadyExistsError(saga_name, state.saga_id) from exc.__cause__
            _telemetry.landed_write("PutItem", saga_name, state.saga_id, 0)
        state.version = 0
        set_incarnation(state, token)

    def update(self, saga_name: str, state: SagaModel, expected_version: int) -> None:
        """Save a changed saga if its stored version is still ``expected_version``.

        One conditional UpdateItem that SETs every attribute the model declares and the state
        holds, REMOVEs those the state sets to None, leaves attributes the model does not
        declare untouched, stores ``expected_version + 1`` and sets ``updated_at`` to now.
        On success ``state.version`` is ``expected_version + 1``.

        :param state: a state whose ``version`` is ``expected_version`` (loaded, changed,
            saved) or ``expected_version + 1`` (saga-bus style, already incremented).
        :raises ConcurrencyError: the stored version differs (``actual_version`` tells it).
        :raises SagaNotFoundError: the saga does not exist; it is never re-created.
        :raises SagaValidationError: on bad input (nothing is written).
        :raises SagaTooLargeError: when the item exceeds 400 KB (nothing is written).
        """
        self._run(
            self._update(saga_name, state, expected_version),
            "update",
            saga_name,
            getattr(state, "saga_id", None),
            "UpdateItem",
        )

    def _update(self, saga_name: str, state: SagaModel, expected_version: int) -> Steps[None]:
        check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
        expected_version = check_version("expected_version", expected_version)
        model = self._check_state(saga_name, state)
        info = model_info(model)
        saga_id = check_key("state.saga_id", state.saga_id, MAX_SORT_KEY_BYTES)
        check_key("state.correlation_id", state.correlation_id, MAX_SORT_KEY_BYTES)
        if state.saga_name is not None and state.saga_name != saga_name:
            raise SagaValidationError(
                "state.saga_name", f"is {state.saga_name!r} but saga_name is {saga_name!r}"
            )
        if (
            self.unique_correlation
            and _is_derived_id(saga_id)
            and saga_id != correlation_saga_id(saga_name, state.correlation_id)
        ):
            raise SagaValidationError(
                "state.correlation_id",
                "cannot change under unique_correlation: the saga's id is derived from it",
            )
        if state.version not in (expected_version, expected_version + 1):
            raise SagaValidationError(
                "state.version",
                f"must be expected_version ({expected_version}) or expected_version + 1, "
                f"got {state.version!r}",
            )

        def prepare() -> None:
            state.saga_name = saga_name
            state.updated_at = utc_now()
            self._apply_ttl(state)

        new_version = expected_version + 1
        token = new_token()
        slot = slot_for(new_version)
        loaded_from = incarnation = incarnation_of(state)
        tokens = {slot: token}
        names = {"#V": info.version, "#T": slot}
        values: dict[str, Any] = {":V": {"N": str(expected_version)}, ":T": {"S": token}}
        sets = [FIXED_SETS]
        if incarnation:
            # A stale copy of a deleted saga must not overwrite a saga inserted since under
            # the same id: versions restart at 0, incarnations never repeat.
            condition = "#V=:V AND #I=:I"
            names["#I"] = INCARNATION
            values[":I"] = {"S": incarnation}
        elif incarnation == "":
            # Loaded from an item without an incarnation (an earlier build, another tool):
            # it must still have none, and from now on it has one.
            incarnation = new_token()
            condition = "#V=:V AND attribute_not_exists(#I)"
            names["#I"] = INCARNATION
            tokens[INCARNATION] = incarnation
            values[":J"] = {"S": incarnation}
            sets.append(ADD_INCARNATION)
        else:
            condition = "#V=:V"  # built by hand: checked by version alone, as before
        item = self._build_item(state, prepare, info, new_version, tokens)
        values[":W"] = item[info.version]
        removes = []
        for name, name_ref, value_ref, assignment in info.update_slots:
            names[name_ref] = name
            value = item.get(name)
            if value is None:
                removes.append(name_ref)
            else:
                values[value_ref] = value
                sets.append(assignment)
        expression = ",".join(sets)
        if removes:
            expression += " REMOVE " + ",".join(removes)
        try:
            yield Send(
                "UpdateItem",
                {
                    "TableName": self.table_name,
                    "Key": {
                        info.hash_key: item[info.hash_key],
                        info.range_key: item[info.range_key],
                    },
                    "UpdateExpression": expression,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
                saga_name=saga_name,
                saga_id=saga_id,
                write=(new_version, token),
            )
        except ConditionFailed as exc:
            stored = yield from self._stored_item(exc, info, saga_name, saga_id)
            if stored is not None and update_landed(stored, new_version, token):
                _telemetry.landed_write("UpdateItem", saga_name, saga_id, new_version)
                state.version = new_version
                set_incarnation(state, incarnation)
                return
            if stored is None:
                raise SagaNotFoundError(saga_name, saga_id) from exc.__cause__
            stored_as = stored_incarnation(stored)
            stored_version = _stored_version(stored, info)
            if (
                loaded_from is not None
                and stored_as != loaded_from
                and ((loaded_from and stored_as) or stored_version <= expected_version)
            ):
                # The saga this state belongs to was deleted; another now has its id: it
                # has another incarnation, or it gained one (or lost it) without moving past
                # our version, which within one incarnation versions never fail to do.
                raise SagaNotFoundError(saga_name, saga_id) from exc.__cause__
            if exc.in_doubt and stored_version >= new_version + HISTORY:
                # An earlier attempt may have landed, and so many writes followed that its
                # slot has been reused: neither success nor a conflict can be told.
                unknown = SagaStoreUnavailableError(
                    "UpdateItem",
                    "ConditionalCheckFailedException",
                    f"an earlier attempt may have been applied, but the saga is at version "
                    f"{stored_version}: over the {HISTORY - 1} later writes its write history "
                    "can look back over",
                    attempts=exc.attempts,
                    may_have_landed=True,
                )
                unknown.write = UnresolvedWrite(saga_name, saga_id, new_version, token)
                raise unknown from exc.__cause__
            _telemetry.conflict(saga_name, saga_id, expected_version, stored_version)
            raise ConcurrencyError(
                saga_name, saga_id, expected_version, stored_version
            ) from exc.__cause__
        state.version = new_version
        set_incarnation(state, incarnation)

    def delete(self, saga_name: str, saga_id: str) -> None:
        """Delete a saga (one DeleteItem). Deleting a missing saga is not an error.

        :raises SagaValidationError: on an empty, non-str or over-long name or id.
        """
        self._run(self._delete(saga_name, saga_id), "delete", saga_name, saga_id, "DeleteItem")

    def _delete(self, saga_name: str, saga_id: str) -> Steps[None]:
        check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
        check_key("saga_id", saga_id, MAX_SORT_KEY_BYTES)
        info = model_info(self.model_for(saga_name))
        yield Send(
            "DeleteItem",
            {
                "TableName": self.table_name,
                "Key": {info.hash_key: {"S": saga_name}, info.range_key: {"S": saga_id}},
            },
        )

    def modify(
        self,
        saga_name: str,
        saga_id: str,
        fn: Callable[[M], M | None],
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
    ) -> M:
        """Load, change and save a saga, retrying on conflicts: the optimistic-retry loop.

        Loads the saga with a consistent read, calls ``fn(state)`` (which changes it in place
        and returns None, or returns the state to save), and updates it with the loaded
        version as the expected version. On ``ConcurrencyError`` it reloads and retries after
        an exponential backoff with full jitter, up to ``max_attempts`` attempts in all.

        When ``fn`` changes nothing (the state it leaves or returns stores the same as the
        loaded one, apart from what the store sets on every write: ``updatedAt``, the
        version, its write tokens and a ``ttl`` derived by ``ttl_days``), nothing is written
        and the loaded state is returned: one GetItem in all (see ``docs/concurrency.md``).

        :returns: the stored state, at its new version (or as loaded, when unchanged).
        :raises SagaNotFoundError: the saga does not exist (or was deleted in between).
        :raises ConcurrencyError: the last conflict, when every attempt lost its race.
        :raises SagaValidationError: on bad arguments or a state ``fn`` made invalid.
        Anything ``fn`` raises propagates, and nothing is written.
        """
        return _modify.modify(
            self,
            saga_name,
            saga_id,
            fn,
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
        )

    def modify_by_correlation_id(
        self,
        saga_name: str,
        correlation_id: str,
        fn: Callable[[M], M | None],
        *,
        start: Callable[[], M] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
    ) -> M:
        """Continue the saga of ``correlation_id`` with ``fn``, or start it: a handler's call.

        Finds the saga as ``get_by_correlation_id`` does and continues as ``modify`` does.
        When there is none and ``start`` is given, ``fn`` is applied to ``start()`` (a new
        state) and the result is inserted (one PutItem). When that insert loses a race to
        another worker starting the same saga (``unique_correlation``), the winner is loaded
        and ``fn`` applied to it as ``modify`` would. Without ``unique_correlation`` the
        lookup is the eventually consistent index: two workers may both start a saga for one
        new correlation id (see ``docs/handlers.md``).

        :param start: makes the state of a new saga (called only when none is found).
        :returns: the stored state. Its version is 0 when this call started the saga (or
            when ``fn`` changed nothing in a saga never updated since its start).
        :raises SagaNotFoundError: no saga has this correlation id and ``start`` is None.
        :raises ConcurrencyError: every attempt lost its race.
        :raises SagaValidationError: bad arguments, or ``start``/``fn`` returned something
            other than a state of this saga (nothing is written).
        """
        max_attempts, base_delay, max_delay = _modify.check_retry_options(
            max_attempts, base_delay, max_delay
        )
        return self._run(
            _modify.modify_by_correlation_id_steps(
                self, saga_name, correlation_id, fn, start, max_attempts, base_delay, max_delay
            ),
            "modify_by_correlation_id",
            saga_name,
        )

    # -- shared steps ----------------------------------------------------------------------

    def _check_state(self, saga_name: str, state: Any) -> type[SagaModel]:
        """The model class to encode ``state`` with: its own class, which must be the saga
        name's model or a subclass of it (whose extra fields are then stored too)."""
        model = self.model_for(saga_name)
        if not isinstance(state, model):
            raise SagaValidationError(
                "state",
                f"saga {saga_name!r} is stored with {model.__name__}; got {type(state).__name__}",
            )
        return type(state)

    def _apply_ttl(self, state: SagaModel) -> None:
        if self._ttl_delta is not None:
            if state.is_completed:
                state.ttl = state.updated_at + self._ttl_delta
            else:
                state.ttl = None

    def _build_item(
        self,
        state: SagaModel,
        prepare: Callable[[], None],
        info: ModelInfo,
        version: int,
        tokens: Mapping[str, str],
    ) -> dict[str, Any]:
        """The item to write: ``prepare`` applied to ``state``, serialized, with the version
        and the store's ``tokens``, size-checked. On bad input ``state`` is left as it was.

        The size check counts the whole write history an item can gather
        (``TOKEN_RESERVE``), so that an item that can be inserted can also be updated.
        """
        snapshot = dict(state.attribute_values)
        try:
            prepare()
            item, size = info.codec.encode(state, version, tokens)
            reserved = size - sum(len(k) + len(v) for k, v in tokens.items()) + TOKEN_RESERVE
            if reserved > ITEM_SIZE_LIMIT:
                raise SagaTooLargeError(
                    "state",
                    reserved,
                    ITEM_SIZE_LIMIT,
                    f"item is {reserved:,} bytes as DynamoDB counts them, with the "
                    f"{TOKEN_RESERVE} bytes of the store's write tokens; the limit is "
                    f"{ITEM_SIZE_LIMIT:,} bytes",
                )
            return item
        except SagaValidationError:
            state.attribute_values = snapshot
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            # prepare() failed: a TTL computed from a bad updated_at, say.
            field = _failing_attribute(state)
            state.attribute_values = snapshot
            raise SagaValidationError(f"state.{field}", f"cannot be stored: {exc}") from exc

    def _stored_item(
        self, failure: ConditionFailed, info: ModelInfo, saga_name: str, saga_id: str
    ) -> Steps[dict[str, Any] | None]:
        """The stored item a failed conditional write met.

        DynamoDB returns it with the failure (``ReturnValuesOnConditionCheckFailure``); with
        ``read_on_conflict`` it is read by one consistent GetItem instead.
        """
        if failure.item is None and self.read_on_conflict:
            failure.item = yield from self._read_raw(info, saga_name, saga_id)
        return failure.item

    def _read_raw(
        self, info: ModelInfo, saga_name: str, saga_id: str
    ) -> Steps[dict[str, Any] | None]:
        """The stored item, by one strongly consistent GetItem (None when there is none)."""
        response = yield Send(
            "GetItem",
            {
                "TableName": self.table_name,
                "Key": {info.hash_key: {"S": saga_name}, info.range_key: {"S": saga_id}},
                "ConsistentRead": True,
            },
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _run(
        self,
        steps: Steps[T],
        call: str,
        saga_name: object,
        saga_id: object = None,
        operation: str | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> T:
        """Run a call's steps (``_steps``): each request is sent with ``dispatch``, each
        function called, each backoff slept with ``sleep``.

        A refused condition is thrown back into the steps (``ConditionFailed``), which
        decide what it means; every other failure ends the call. ``call``, ``saga_name``,
        ``saga_id`` and ``operation`` describe the call to telemetry
        (``_telemetry.start_call``).
        """
        trace = _telemetry.start_call(call, self.table_name, saga_name, saga_id, operation)
        try:
            step = next(steps)
            while True:
                if isinstance(step, Send):
                    try:
                        response = self._dispatch(
                            step.operation,
                            step.request,
                            None if trace is None else trace.request(step),
                        )
                    except ConditionFailed as failure:
                        step = steps.throw(failure)
                    except SagaStoreUnavailableError as exc:
                        step.identify(exc)
                        raise
                    else:
                        step = steps.send(response)
                elif isinstance(step, Call):
                    step = steps.send(step.fn(*step.args))
                else:
                    sleep(step.seconds)
                    step = steps.send(None)
        except StopIteration as done:
            result: T = done.value
            if trace is not None:
                trace.end(result)
            return result
        except BaseException as error:
            if trace is not None:
                trace.fail(error)
            raise

    def _dispatch(
        self,
        operation: str,
        request: dict[str, Any],
        trace: _telemetry.RequestTrace | None = None,
    ) -> dict[str, Any]:
        """``dispatch`` with the store's retry policy, transport and request observers."""
        return dispatch(
            self.connection,
            self.table_name,
            operation,
            request,
            self.retry,
            self._http,
            self._request_observers,
            trace,
        )

    def _observe_requests(self, observer: RequestObserver) -> None:
        """Call ``observer(operation, request)`` before each attempt the store sends, on
        either transport (once, however many times it is added)."""
        if observer not in self._request_observers:
            # Replaced, never mutated: a sending thread sees the old tuple or the new one.
            self._request_observers = (*self._request_observers, observer)

    def write_landed(self, error: SagaStoreUnavailableError) -> bool:
        """Whether the insert or update that raised ``error`` was applied after all.

        For a write that gave up with ``may_have_landed`` True. One consistent GetItem: True
        when the saga carries the write's token (an update is recognised while fewer than
        ``HISTORY`` = 10 writes have followed it, an insert for as long as its saga exists);
        False when it does not, which also covers a saga deleted since.

        :raises SagaValidationError: ``error`` is not an unresolved insert or update.
        """
        write = getattr(error, "write", None)
        return self._run(
            self._write_landed(error),
            "write_landed",
            getattr(write, "saga_name", None),
            getattr(write, "saga_id", None),
            "GetItem",
        )

    def _write_landed(self, error: SagaStoreUnavailableError) -> Steps[bool]:
        write = getattr(error, "write", None)
        if not isinstance(write, UnresolvedWrite):
            raise SagaValidationError(
                "error", "is not a SagaStoreUnavailableError of an insert or update"
            )
        info = model_info(self.model_for(write.saga_name))
        item = yield from self._read_raw(info, write.saga_name, write.saga_id)
        if item is None:
            return False
        if write.version == 0 and insert_landed(item, write.token):
            return True
        return update_landed(item, write.version, write.token)


def _stored_version(item: Mapping[str, Any], info: ModelInfo) -> int:
    """The version of a stored item for an error message; -1 when it has none or it is not
    a whole number (written by another tool)."""
    text = item.get(info.version, {}).get("N")
    try:
        return int(text) if text is not None else -1
    except ValueError:
        return -1


#: Namespace of the ids derived from correlation ids. Never change it: stored sagas are keyed
#: by ids derived with it.
CORRELATION_NAMESPACE = uuid.UUID("6f1d3c1e-8a0b-5b64-9a59-5a6761c0ffee")


def correlation_saga_id(saga_name: str, correlation_id: str) -> str:
    """The saga id ``unique_correlation`` derives from ``(saga_name, correlation_id)``.

    A name-based UUID (version 5): the same inputs give the same id on every machine and in
    every release, and the saga name's length prefix keeps distinct pairs distinct.
    """
    return str(uuid.uuid5(CORRELATION_NAMESPACE, f"{len(saga_name)}:{saga_name}{correlation_id}"))


def _is_derived_id(saga_id: str) -> bool:
    """Whether ``saga_id`` is a version 5 UUID in canonical form, as derived ids are."""
    if len(saga_id) != 36 or saga_id[14] != "5":
        return False
    try:
        return str(uuid.UUID(saga_id)) == saga_id
    except ValueError:
        return False


def _check_same_meta(
    source: type[SagaModel], models: list[type[SagaModel]], name: str, value: Any
) -> None:
    """Every model that declares its own ``Meta.<name>`` declares the store's: a model
    naming another table or region would otherwise be written somewhere it does not say."""
    for each in models:
        if each.Meta is SagaModel.Meta or each.Meta is source.Meta:
            continue
        declared = getattr(each.Meta, name, None)
        if declared is not None and declared != value:
            raise SagaValidationError(
                "models",
                f"{each.__name__}.Meta.{name} is {declared!r} but the store's {name} is "
                f"{value!r} (from {source.__name__}.Meta): one store serves one table in one "
                f"region; pass {name}=... to choose, or declare the same Meta.{name}",
            )


def _pick(value: Any, meta: Any, name: str) -> Any:
    return value if value is not None else getattr(meta, name, None)


def _failing_attribute(state: SagaModel) -> str:
    """The name of the first attribute of ``state`` that does not serialize."""
    for name, attr in state.get_attributes().items():
        value = getattr(state, name)
        if value is None:
            continue
        try:
            attr.serialize(value)
        except Exception:
            return name
    return "?"
