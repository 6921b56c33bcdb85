"""annotations/hooks.py: how the layers above annotations plug into it, and that they do (AppConfig.ready)."""

from annotations import hooks
from annotations.hooks import Hook, Provider


def test_a_hook_calls_each_registered_function_once_in_order():
    calls = []
    hook = Hook("test")

    def first(**kwargs):
        calls.append(("first", kwargs))

    def second(**kwargs):
        calls.append(("second", kwargs))

    hook(imagette_id=1)  # nothing registered: no follow-up, no error
    hook.register(first)
    hook.register(second)
    hook.register(first)  # AppConfig.ready may run twice in tests: still once
    hook(imagette_id=7)
    assert calls == [("first", {"imagette_id": 7}), ("second", {"imagette_id": 7})]


def test_a_batch_makes_the_held_calls_once_at_its_end_and_a_failure_does_not_fail_it():
    calls = []
    hook = Hook("test")
    hook.register(lambda: calls.append("settled"))
    with hook.once_after():
        for _ in range(5):
            hook()
        with hook.once_after():  # nested: still once, at the outer end
            hook()
        assert calls == []
    assert calls == ["settled"]
    with hook.once_after():
        pass  # nothing settled: no call
    assert calls == ["settled"]

    def broken():
        raise RuntimeError("the retrain check failed")

    hook.register(broken)
    with hook.once_after():
        hook()
    assert calls == ["settled", "settled"]


def test_a_provider_answers_none_until_someone_provides():
    provider = Provider("test")
    assert provider() is None
    provider.register(lambda: "a")
    provider.register(lambda: "b")
    assert provider() == "b"


def test_training_and_inference_registered_what_annotations_asks_of_them():
    from inference.selectors import active_prediction_prefetch
    from inference.services.review import predictions_mark_reviewed
    from training.services.retrain import retrain_maybe_submit

    assert retrain_maybe_submit in hooks.labels_settled._functions
    assert predictions_mark_reviewed in hooks.expert_decided._functions
    assert hooks.prediction_prefetch._function is active_prediction_prefetch
