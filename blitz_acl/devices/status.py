"""CANN status codes -> Python exceptions: one table, one `check` every library call goes through.

The message is the library's own (aclGetRecentErrMsg), and the exception keeps the status, so a
caller can tell ACLNN_ERR_PARAM_NULLPTR from ACLNN_ERR_PARAM_INVALID. Status values are read
from the generated declarations (the loaded library's constants), never written twice.
"""

from __future__ import annotations


class AclError(RuntimeError):
    """A device library call returned a non-zero status."""

    def __init__(self, status: int, status_name: str, function: str, message: str):
        self.status = status
        self.status_name = status_name
        self.function = function
        self.message = message
        super().__init__(f"{function} failed with {status_name} ({status}): {message or 'no message'}")


class AclInvalidArgumentError(AclError, ValueError):
    """The library rejected an argument (null pointer, bad enum, shape, index, length)."""


class AclOutOfMemoryError(AclError, MemoryError):
    """The library could not allocate memory."""


class AclDeviceError(AclError):
    """No such device, or no device set on this thread."""


class AclStateError(AclError):
    """aclInit/aclFinalize called in the wrong order."""


class AclInternalError(AclError):
    """A failure inside the library or the kernel."""


# Status name (as the generated declarations spell it) -> exception class.
STATUS_EXCEPTIONS = {
    "ACL_ERROR_INVALID_PARAM": AclInvalidArgumentError,
    "ACLNN_ERR_PARAM_NULLPTR": AclInvalidArgumentError,
    "ACLNN_ERR_PARAM_INVALID": AclInvalidArgumentError,
    "ACL_ERROR_BAD_ALLOC": AclOutOfMemoryError,
    "ACL_ERROR_INVALID_DEVICE": AclDeviceError,
    "ACL_ERROR_UNINITIALIZE": AclStateError,
    "ACL_ERROR_REPEAT_INITIALIZE": AclStateError,
    "ACL_ERROR_INTERNAL_ERROR": AclInternalError,
    "ACLNN_ERR_RUNTIME_ERROR": AclInternalError,
    "ACLNN_ERR_INNER": AclInternalError,
}


def _by_value(lib):
    return {getattr(lib, name): (name, cls) for name, cls in STATUS_EXCEPTIONS.items()}


class StatusChecker:
    """Turns a status (and the library's recent message) into an exception."""

    def __init__(self, ffi, lib):
        self._ffi = ffi
        self._lib = lib
        self._table = _by_value(lib)

    def recent_message(self) -> str:
        text = self._lib.aclGetRecentErrMsg()
        return "" if text == self._ffi.NULL else self._ffi.string(text).decode("utf-8", "replace")

    def error(self, status: int, function: str) -> AclError:
        name, cls = self._table.get(status, (f"status {status}", AclError))
        return cls(status, name, function, self.recent_message())

    def check(self, status: int, function: str) -> None:
        """Raises the exception for a non-zero status."""
        if status != 0:
            raise self.error(status, function)


class CheckedCalls:
    """`call` / `create` for a loaded device library: every call goes through its StatusChecker.

    Subclasses set `ffi`, `lib` (the raw cffi library or a chain of them) and `status`.
    """

    def call(self, function: str, *args) -> None:
        """Calls a status-returning function; raises AclError on a non-zero status."""
        self.status.check(getattr(self.lib, function)(*args), function)

    def create(self, function: str, *args):
        """Calls a handle-returning function (aclCreateTensor, ...); raises on NULL."""
        handle = getattr(self.lib, function)(*args)
        if handle == self.ffi.NULL:
            raise self.status.error(self.lib.ACLNN_ERR_PARAM_INVALID, function)
        return handle
