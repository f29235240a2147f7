"""Evaluation: a file of topics made into videos and reported on, optionally judged by a model.

Plain functions and the eval's vocabulary, no Temporal: `topics.load_topics` validates a topic
file, `judge.judge_video` has a model score one video on five axes from its transcript and sampled
frames, `report.build_report` and `report.markdown` turn the jobs' outcomes into the report;
`runs` holds what the eval workflow and its activities exchange. `workflows/eval.py` orchestrates
them through `activities/eval.py`.
"""
