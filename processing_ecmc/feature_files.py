"""Pre-extracted feature files (`.npy`, frames x d, e.g. MMDA's): the one reader, used when a data
set is built (a bad file drops its row with the reason) and when the feature cache reads them (a bad
file is an error). Never unpickles (SECURITY.md)."""

from pathlib import Path

import numpy as np


def read_feature_file(path, width: int | None = None) -> np.ndarray:
    """The finite, non-empty 2-D numeric array in the `.npy` file `path` (with `width` columns when
    given); any other content is a ValueError naming the file and the problem."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if magic != b"\x93NUMPY":  # numpy would call any other file "pickled data"
        raise ValueError(f"{path} is not a readable .npy file (no NumPy header)")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path} cannot be loaded without pickle ({exc})") from None
    except Exception as exc:  # truncated, damaged header, ...
        raise ValueError(f"{path} is not a readable .npy file ({type(exc).__name__}: {exc})") from None
    expected = f"(frames > 0, {width})" if width else "2-D (frames x dim)"
    if array.ndim != 2 or (width is not None and array.shape[1] != width):
        raise ValueError(f"{path} has shape {tuple(array.shape)}, expected {expected}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{path} is empty (shape {tuple(array.shape)})")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path} has non-numeric dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{path} contains NaN or Inf")
    return array
