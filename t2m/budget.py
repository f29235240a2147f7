"""A job's budget for model calls, in words: how money is shown, and when a budget is spent.

Pure functions over `t2m.vocabulary`, shared by the workflow (which stops asking the model), the API
and the CLI (which show spend against budget).
"""

from __future__ import annotations


def usd(amount: float) -> str:
    """Dollars with 2 to 4 decimals: `$0.05`, `$0.0123`, `$2.00`."""
    whole, _, cents = f"{amount:.4f}".rstrip("0").partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def spent_against(max_cost_usd: float | None, spent_usd: float) -> str:
    """`$0.0123 of $0.05` (or just the spend when there is no budget)."""
    spent = usd(spent_usd)
    return spent if max_cost_usd is None else f"{spent} of {usd(max_cost_usd)}"


def exhausted(max_cost_usd: float | None, spent_usd: float) -> str | None:
    """Why no model may be asked any more, or None while the budget (if any) has money left.

    Checked before each call: a call already running finishes, so the spend can pass the budget
    by what the calls in flight at that moment cost.
    """
    if max_cost_usd is None or spent_usd < max_cost_usd:
        return None
    return f"budget of {usd(max_cost_usd)} reached after {usd(spent_usd)} spent"
