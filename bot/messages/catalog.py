"""Import every renderer module, so that each registers its templates.

Whatever posts notifications (the delivery worker, the console) imports
this module once before it looks a template up with `spec_for`.
"""

from __future__ import annotations

from bot.messages import approvals, claims, reviews, scope_reductions

RENDERER_MODULES = (approvals, claims, reviews, scope_reductions)
