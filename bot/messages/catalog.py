"""Import every renderer module, so that each registers its templates.

Whatever posts notifications (the delivery worker, the console) imports
this module once before it looks a template up with `spec_for`.
"""

from __future__ import annotations

from bot.messages import approvals, claims, notices, reviews, scope_reductions
from bot.messages.notices import render_fallback

RENDERER_MODULES = (approvals, claims, notices, reviews, scope_reductions)

__all__ = ["RENDERER_MODULES", "render_fallback"]
