"""t2m's vocabulary, one module per concept: what a video request, a plan, a job's status and its
artifacts are.

The bottom of the import graph: only pydantic and the standard library. The workflow, the
activities, the API and the CLI all speak these types; the lists of qualities, priorities,
statuses and stages are derived from their `Literal`s here and nowhere else.

- `text`: rules for the text people send (one line, several lines, user names)
- `style`: `style_preferences` keys and values
- `request`: what a person asks for and what a job is asked to do
- `plan`: what a job plans and makes (plan, storyboard, narration, checkpoint, artifacts)
- `usage`: model calls, tokens and cost
- `job`: job ids, states, stages, status and the catalog record
"""
