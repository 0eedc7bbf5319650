"""Strict JSON for every file the study writes: non-finite numbers become null, and the file says where.

Python's json writes NaN and Infinity, which JSON does not have (strict parsers reject the file).
dumps() replaces each non-finite float (numpy's too) by null and, in a top-level object, lists the
places it did so under NON_FINITE_KEY (as `key.sub[3]` paths), then writes with allow_nan=False.
Only the standard library (config.json is written through it): numpy values are recognised by module.
"""
import json
import math

NON_FINITE_KEY = "non_finite_as_null"


def _clean(value, path, replaced):
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()  # numpy scalars and arrays as Python numbers and lists
    if isinstance(value, float) and not math.isfinite(value):
        replaced.append(f"{path or '(top)'} ({value!r})")
        return None
    if isinstance(value, dict):
        return {key: _clean(item, f"{path}.{key}" if path else str(key), replaced) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item, f"{path}[{k}]", replaced) for k, item in enumerate(value)]
    return value


def clean(value):
    """(value with every non-finite float replaced by None, the list of places replaced)."""
    replaced = []
    return _clean(value, "", replaced), replaced


def dumps(value, **options):
    """json.dumps(value, **options) as strict JSON (see the module's docstring)."""
    cleaned, replaced = clean(value)
    if replaced and isinstance(cleaned, dict):
        cleaned[NON_FINITE_KEY] = replaced
    return json.dumps(cleaned, allow_nan=False, **options)
