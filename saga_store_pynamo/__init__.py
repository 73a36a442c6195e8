"""saga-store-pynamo: saga state in AWS DynamoDB, as a PynamoDB model layer.

Subclass ``SagaModel`` to declare a saga's fields, create the table with
``create_table()``, and load and save sagas through ``DynamoDBSagaStore``.
"""

from .errors import (
    ConcurrencyError,
    IncompatibleTableError,
    SagaAlreadyExistsError,
    SagaDataError,
    SagaNotFoundError,
    SagaStoreError,
    SagaStoreRequestError,
    SagaStoreUnavailableError,
    SagaTooLargeError,
    SagaValidationError,
    TableNotFoundError,
    UnresolvedWrite,
)
from .models import (
    CorrelationIndex,
    DecimalAttribute,
    SagaModel,
    SagaStateMetadata,
    UTCTimestampAttribute,
)
from .retry import RetryPolicy
from .store import DynamoDBSagaStore, SagaPage, correlation_saga_id
from .table import create_table
from .views import SagaView

__version__ = "0.1.0"

__all__ = [
    "ConcurrencyError",
    "CorrelationIndex",
    "DecimalAttribute",
    "DynamoDBSagaStore",
    "IncompatibleTableError",
    "RetryPolicy",
    "SagaAlreadyExistsError",
    "SagaDataError",
    "SagaModel",
    "SagaNotFoundError",
    "SagaPage",
    "SagaStateMetadata",
    "SagaStoreError",
    "SagaStoreRequestError",
    "SagaStoreUnavailableError",
    "SagaTooLargeError",
    "SagaValidationError",
    "SagaView",
    "TableNotFoundError",
    "UTCTimestampAttribute",
    "UnresolvedWrite",
    "__version__",
    "correlation_saga_id",
    "create_table",
]
