"""Which names a spec may use for layers, inputs, blocks and params."""

from __future__ import annotations

import keyword
import re

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")

# Attributes every torch.nn.Module has (dir(nn.Module) of torch 2.x, plus instance state): a
# layer of that name would shadow them. Names are the weights' keys, so they are refused, not
# renamed. Kept as a literal so that validation never imports torch.
MODULE_ATTRS = frozenset(
    """T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
    double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
    get_submodule half ipu load_state_dict modules mtia named_buffers named_children
    named_modules named_parameters parameters register_backward_hook register_buffer
    register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad""".split()
)

MODULE_PRIVATE = frozenset(
    """_apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
    _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
    _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
    _is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks
    _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook _modules _named_members
    _non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook
    _register_state_dict_hook _replicate_for_data_parallel _save_to_state_dict _slow_forward
    _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl""".split()
)


def check_identifier(name: object) -> str | None:
    """Why `name` cannot name a layer, input or block; None if it can."""
    if not isinstance(name, str):
        if isinstance(name, (list, dict)):
            what = "a list" if isinstance(name, list) else "a mapping"
        elif name is None or isinstance(name, bool):
            what = {None: "null", True: "true", False: "false"}[name]
        else:
            what = f"the number {name!r}"
        return f"expected a name, got {what}"
    if not IDENT.match(name):
        return f"{name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{name!r} is a Python keyword"
    if name.startswith("__"):
        return f"{name!r} starts with '__', which Python reserves"
    if name in MODULE_ATTRS or name in MODULE_PRIVATE:
        return f"{name!r} is an attribute of every torch.nn.Module and cannot name a layer"
    return None


def name_hint(name: object) -> str:
    """How to fix a name that `check_identifier` refused."""
    if isinstance(name, bool) or name is None or not isinstance(name, str | int | float):
        return "names are identifiers: a letter or '_', then letters, digits or '_'"
    if not isinstance(name, str):
        return "names start with a letter or '_'; YAML reads this value as a number"
    if IDENT.match(name) and not name.startswith("__"):
        return f"rename it, e.g. '{name}_'"
    fixed = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not IDENT.match(fixed) or fixed.startswith("__"):
        fixed = "x_" + fixed.lstrip("_")
    return f"names are identifiers ([A-Za-z_][A-Za-z0-9_]*), e.g. '{fixed}'"
