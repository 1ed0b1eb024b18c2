"""How an answer is judged: the final answer read from a response (chat or reasoning), locale
numbers and answer phrases, grading against the gold answer, the thinking/answer split, the
language of a response, difficulty weights. The numbers of the study depend on this code more than
on any other: the ``score`` command (:mod:`parallel_scaling.evaluate.score`) and the GRPO rewards
(:mod:`parallel_scaling.train.rewards`) both use it."""
