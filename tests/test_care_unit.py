"""The care check's detector (app/services/care.py) and the alias warnings (app/services/safe_alias.py):
table-driven, both directions."""

from __future__ import annotations

import pytest

from app.services import care, safe_alias

CONCERN = [
    "I want to kill myself",
    "i want to kill myself",
    "I WANT TO KILL MYSELF",
    "I wanna kill myself",
    "I'm going to kill myself",
    "Im gonna kill myself tonight",
    "I\u2019m going to kill myself",
    "I've been thinking about killing myself",
    "I keep thinking about killing myself.",
    "sometimes I think about killing myself",
    "I want to kill myslef",
    "kms",
    "honestly just kms",
    "I want to unalive myself",
    "thinking about ending my life",
    "I'm thinking about ending my life.",
    "I want to end my life",
    "I've decided to end my life",
    "I want to take my own life",
    "I could take my own life tonight",
    "i want to end it all",
    "I'm ready to end it all.",
    "Some days I just want to end it.",
    "I want to end everything.",
    "I want to die",
    "I wanna die",
    "I just want to die.",
    "i want to dieee",
    "I really want to die right now",
    "I wish I was dead",
    "I wish I were dead.",
    "I wish I could die",
    "I hope I die soon",
    "I'd be better off dead",
    "I am better off dead",
    "everyone would be better off without me",
    "My family would be better off without me.",
    "they'd all be better off without me",
    "I don't want to be alive anymore",
    "I dont want to live anymore",
    "I don't want to live like this",
    "I do not want to wake up tomorrow",
    "I hope I don't wake up",
    "I wish I could go to sleep and never wake up",
    "I want to stop existing",
    "I don't want to exist.",
    "I wish I had never been born",
    "I have nothing to live for",
    "there's nothing to live for",
    "there is no reason to live",
    "I have no reason to go on",
    "What's the point of living?",
    "there's no point in living",
    "no point being alive.",
    "life isn't worth living",
    "My life is not worth living any more",
    "I can't go on anymore",
    "I cant go on like this",
    "I can't do this anymore.",
    "I can't take it anymore.",
    "I feel suicidal",
    "I'm suicidal",
    "I am feeling suicidal again",
    "I've been suicidal lately",
    "Feeling really suicidal tonight.",
    "I'm having suicidal thoughts",
    "my suicidal thoughts are back",
    "I feel sucidal",
    "I want to commit suicide",
    "I'm thinking about suicide",
    "I've been considering suicide",
    "I'm planning my suicide",
    "I wrote a suicide note",
    "I attempted suicide last year and I feel close again",
    "I want to hurt myself",
    "I feel like hurting myself",
    "I want to cut myself",
    "I've started cutting myself again",
    "I relapsed and I'm self harming again",
    "I self-harm when it gets bad",
    "the urge to self harm is strong tonight",
    "I've been hurting myself again",
    "I want to overdose",
    "I'm going to take all my pills",
    "I want to jump off a bridge",
    "thinking of jumping in front of a train",
    "I want to hang myself",
    "nobody would miss me",
    "I don't see a way out",
    "suicide seems like my only option",
    "goodbye cruel world",
    "I'm going to kill myself\nbut I'm fine",
    "Wow.  I   want  to\tkill   myself.",
]

NO_CONCERN = [
    "this deadline is killing me",
    "I could kill for a coffee",
    "dying of embarrassment",
    "I'm dying of embarrassment",
    "I nearly died laughing",
    "I almost killed myself laughing",
    "my feet are killing me",
    "these shoes are killing me",
    "the suspense is killing me",
    "kill two birds with one stone",
    "I killed it at the presentation today",
    "I'd kill to have her confidence",
    "this chocolate cake is to die for",
    "I'm dying to see the new film",
    "that joke killed me",
    "I'm dead tired",
    "I could die of boredom in these meetings",
    "I want to die of embarrassment",
    "I was dying of thirst after the run",
    "I'm not suicidal, just tired",
    "I don't want to die, I want to live well",
    "I would never kill myself",
    "I nearly killed myself on my bike this morning",
    "I've been killing myself at work to meet this deadline",
    "I'm killing myself trying to please everyone",
    "I hate my life some mornings",
    "I hurt my back at the gym",
    "I cut my hair short",
    "I want to end my subscription",
    "I want to end the relationship",
    "ending my contract was the right call",
    "my grandmother died last year and I miss her",
    "my friend's brother died by suicide and I'm grieving",
    "we talked about suicide prevention at work",
    "I don't want to be here at this party",
    "I don't want to live in London",
    "I need to kill some time before the bus",
    "the plants died while I was away",
    "my phone died",
    "the battery is dead",
    "dead end job",
    "I'm dying inside at this meeting lol",
    "I could sleep for a week",
    "I took my pills this morning as usual",
    "I jumped off the diving board for the first time!",
    "we hang out with ourselves too much",
    "I want to take my life back",
    "end of the day, I am proud",
    "I can't go to the gym today",
    "I can't do this job anymore without help",
    "this is a murder mystery book about a killer",
    "killing time",
    "Kill the lights please",
    "the end",
    "I felt like I was going to die of nerves but I spoke",
    "",
    "   ",
    "I'm so done with this week",
    "It was a killer workout",
]


@pytest.mark.parametrize("text", CONCERN)
def test_risk_phrasings_raise_concern(text: str) -> None:
    assert care.concern(text), care.normalise(text)


@pytest.mark.parametrize("text", NO_CONCERN)
def test_everyday_speech_raises_none(text: str) -> None:
    assert not care.concern(text), care.normalise(text)


def test_the_table_is_large() -> None:
    assert len(CONCERN) + len(NO_CONCERN) >= 100
    assert len(set(CONCERN)) == len(CONCERN) and len(set(NO_CONCERN)) == len(NO_CONCERN)


def test_normalise() -> None:
    assert care.normalise("I\u2019M  Sooo   tired!!") == " . i am soo tired . "
    assert care.normalise("I cant; ok") == " . i can not . ok . "
    assert care.normalise("") == " . "


def test_grammar_errors_are_named() -> None:
    with pytest.raises(care.PhraseError, match="unknown group"):
        care.phrases("@nope kill")
    assert care.concern("i want ice", source="want ice|tea")
    assert not care.concern("i want ice", source="! want ice\nwant ice")


RISKY_ALIASES = [
    ("Maria Lopez", "name"),
    ("John Smith", "name"),
    ("Jean-Luc Picard", "name"),
    ("Anna de Vries", "name"),
    ("Zoë Müller", "name"),
    ("maria.lopez@example.com", "email"),
    ("me@mail.org", "email"),
    ("+44 7700 900123", "phone"),
    ("555-123-4567", "phone"),
    ("(020) 7946 0958", "phone"),
    ("lantern19840312", "digits"),
    ("walker 123456", "digits"),
]
SAFE_ALIASES = ["Lantern", "quiet river", "Blue Heron", "Steady Oak", "sam", "Fox42", "Morning Walker", "R2", "ember"]


@pytest.mark.parametrize(("alias", "kind"), RISKY_ALIASES)
def test_risky_aliases_warn_and_explain(alias: str, kind: str) -> None:
    found = safe_alias.warnings(alias)
    words = {"name": "name", "email": "email", "phone": "phone", "digits": "digits"}
    assert any(words[kind] in w for w in found), found
    assert found[-1] == safe_alias.WHY


@pytest.mark.parametrize("alias", SAFE_ALIASES)
def test_safe_aliases_pass(alias: str) -> None:
    assert safe_alias.warnings(alias) == []
