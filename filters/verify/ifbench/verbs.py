"""Does a text start with a verb? A rule-based stand-in for NLTK's POS tagger.

IFBench's ``words:start_verb`` tags the whole response with ``nltk.pos_tag`` (the
averaged-perceptron English model) and passes when the first token's tag contains
``VB`` (VB, VBD, VBG, VBN, VBP, VBZ). The tagger model is NLTK data that cannot be
downloaded here, so :func:`starts_with_verb` decides from the first
``word_tokenize`` token alone:

1. it must be alphabetic (the tagger gives digits, symbols and punctuation non-verb tags);
2. modals (``can``, ``will``, ...) are ``MD``, not verbs; forms of *be*, *have* and *do*
   and a list of irregular past forms are verbs;
3. a word in :data:`VERBS` (common base forms, imperative use), or a regular
   ``-ed`` / ``-ing`` inflection of one, is a verb;
4. any other ``-ing`` / ``-ed`` word of 5+ letters is a participle (VBG/VBN/VBD) unless
   listed in ``_NOT_VERBS`` (``morning``, ``hundred``, ...); ``-ize``,
   ``-ise`` and ``-ify`` words of 6+ letters are verbs (same exception list);
5. ``-s`` forms are *not* accepted (``Students ...``, ``Plans ...`` open responses far
   more often than a third-person verb does).

Known difference: the perceptron tagger often tags a sentence-initial capitalised
imperative as a proper noun (``Conceive``, ``Understand``, ``Build`` -> NNP), so it fails
responses that do start with a verb; this rule passes them. Conversely a base form that
is also a noun (``Answer: ...``, ``Design ...``) passes here where the tagger may say NN.
"""
from __future__ import annotations

from filters.verify.ifbench.text import word_tokenize

__all__ = ["VERBS", "is_verb", "starts_with_verb"]

VERBS: frozenset[str] = frozenset(
    """
    accept access achieve acknowledge acquire act adapt add address adjust admire admit
    adopt advance advise advocate affect afford agree aim alert align allocate allow alter
    analyse analyze anchor announce answer anticipate apologize appeal appear apply
    appoint appreciate approach approve argue arise arrange arrive ask assemble assert
    assess assign assist assume assure attach attack attempt attend attract avoid awaken
    bake balance ban base bear beat become begin behave believe belong bend benefit bet
    bind bite blend bless block blow boast boost borrow bother bounce bow break breathe
    breed bring broadcast browse brush build burn burst buy calculate call calm cancel
    capture care carry carve cast catch cause celebrate center challenge change charge
    chase chat check cheer choose cite claim clarify classify clean clear climb cling
    close coach collaborate collapse collect combine come comfort command comment commit
    communicate compare compete compile complain complete compose comprehend compute
    conceive concentrate conclude conduct confess configure confirm confront connect
    conquer consider consist construct consult consume contact contain continue
    contrast contribute control convert convey convince cook cooperate coordinate cope
    copy correct count cover craft crash crawl create criticize cross crush cry
    cultivate cure cut dance dare deal debate decide declare decline decorate decrease
    dedicate defeat defend define delay delegate delete deliver demand demonstrate deny
    depart depend deploy describe deserve design desire destroy detect determine develop
    devise devote diagnose dig direct disagree disappear discover discuss dismiss
    display distinguish distribute dive divide do document dominate double doubt drag
    draw dream dress drift drink drive drop earn ease eat edit educate elaborate elect
    eliminate embark embody embrace emerge emphasize employ empower enable encounter
    encourage end endure enforce engage enhance enjoy enlighten enroll ensure enter
    entertain envision equip erase escape establish estimate evaluate evolve examine
    exceed exchange excite exclude execute exercise exhibit exist expand expect
    experience experiment explain explore export expose express extend extract face
    facilitate fail fall fasten favor fear feed feel fetch fight figure fill filter
    finalize find finish fire fit fix flee flip float flow fly focus fold follow forbid
    force forecast forge forget forgive form formulate foster free freeze fulfill gain
    gather generate get give glance glow go grab grant grasp greet grind grip grow guard
    guess guide handle hang happen harness hate have head heal hear help hide highlight
    hire hit hold hope host hug hunt hurry hurt identify ignite ignore illustrate imagine
    imitate implement imply import impose impress improve include incorporate increase
    indicate influence inform inhale initiate innovate input inquire insert insist
    inspect inspire install instruct integrate intend interact interpret interrupt
    introduce invent invest investigate invite involve isolate join judge jump justify
    keep kick kill kiss knit knock know label lack land last laugh launch lay lead lean
    leap learn leave lend let lie lift light like limit link list listen live load
    locate lock look lose love lower maintain make manage manipulate map mark master
    match matter measure meditate meet melt memorize mention merge migrate mind minimize
    mix model modify monitor motivate mount move multiply name navigate need negotiate
    nod note notice nourish nurture obey object observe obtain occupy occur offer open
    operate oppose optimize order organize outline overcome overlook own pack paint pair
    participate pass pause pay perceive perform permit persist persuade pick picture
    pitch place plan plant play plead pledge plot plug point polish ponder portray pose
    possess post pour practice practise praise pray predict prefer prepare present
    preserve press pretend prevent print prioritize proceed process produce program
    progress prohibit promise promote pronounce propose protect prove provide publish
    pull pump punch purchase pursue push put qualify question quit quote race raise
    rank rate reach react read realize rearrange reason recall receive recognize
    recommend reconcile record recover recruit reduce refer refine reflect reform
    refuse regard register regret regulate reinforce reject relate relax release rely
    remain remember remind remove render renew repair repeat replace reply report
    represent request require rescue research resemble reserve reset resist resolve
    respect respond rest restore restrict retain retire retrieve return reveal reverse
    review revise revolutionize reward ride ring rise risk roll rotate rule run rush
    sail satisfy save say scan schedule scream search secure see seek seem seize select
    sell send sense separate serve set settle shake shape share sharpen shed shift shine
    shoot shop shout show shrink shut sign simplify sing sink sit sketch skip sleep
    slide slip smell smile solve sort sound speak specify speculate spend spin split
    spread stand start state stay steal steer step stick stimulate stir stop store
    strengthen stress stretch strike strip strive structure struggle study submit
    succeed suffer suggest summarize supply support suppose surround survive suspect
    sustain swallow swear sweep swim switch synthesize take talk target taste teach tear
    tell tend test thank think thrive throw tie tighten touch tour trace track trade
    train transform translate transmit transport travel treat trust try turn type
    uncover undergo underline understand undertake unify unite unlock unravel unveil
    update upgrade uphold urge use utilize validate value verify view visit visualize
    vote wait wake walk wander want warn wash watch wave wear weave weigh welcome whisper
    win wish withdraw witness wonder work worry wrap write yield
    """.split()  # noqa: SIM905 - word lists read best as text
)

_AUXILIARY_AND_IRREGULAR: frozenset[str] = frozenset(
    """
    is am are was were be been being has had does did done
    arose awoke bore beaten became began bent bet bit bitten bled blew blown broke broken
    bred brought built burnt bought caught chose chosen clung came dealt dug dove drew
    drawn dreamt drank drunk drove driven ate eaten fell fallen fed felt fought found
    fled flung flew flown forbade forgot forgotten forgave forgiven froze frozen got
    gotten gave given went gone grew grown hung heard hid hidden held kept knelt knew
    known laid led leapt learnt left lent lay lain lit lost made meant met paid proved
    proven quit ran rang rung rode ridden rose risen said sat saw seen sought sold sent
    shook shaken shone shot showed shown shrank shut sang sung sank sunk slept slid
    spoke spoken spent spun split spread sprang stood stole stolen stuck stung strode
    struck strove swore sworn swept swam swum swung took taken taught tore torn told
    thought threw thrown understood undertook underwent woke woken wore worn wove woven
    wept won wound withdrew wrote written
    """.split()  # noqa: SIM905 - word lists read best as text
)

_MODALS: frozenset[str] = frozenset(
    ["can", "could", "may", "might", "must", "shall", "should", "will", "would", "ought"]
)

# -ing / -ed / -ise words that are not verb forms.
_NOT_VERBS: frozenset[str] = frozenset(
    """
    anything awning bedding ceiling clothing during evening everything herring morning
    nothing pudding something spring sterling string swing thing viking wedding wing
    bed bred breed creed deed embed exceed fled feed greed heed hundred indeed kindred
    naked need proceed reed red sacred seed shed shred sled speed steed succeed
    wicked wretched rugged ragged jagged crooked beloved
    concise enterprise expertise franchise likewise merchandise otherwise precise premise
    """.split()  # noqa: SIM905 - word lists read best as text
)


def _doubled_stem(stem: str) -> str | None:
    # "stopping" -> "stopp" -> "stop"
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "aeiou":
        return stem[:-1]
    return None


def _inflects_known_verb(word: str) -> bool:
    stems: list[str | None] = []
    if word.endswith("ing") and len(word) > 4:
        stem = word[:-3]
        stems += [stem, stem + "e", _doubled_stem(stem)]
        if stem.endswith("y"):  # "lying" -> "lie"
            stems.append(stem[:-1] + "ie")
    elif word.endswith("ed") and len(word) > 3:
        stem = word[:-2]
        stems += [stem, word[:-1], _doubled_stem(stem)]
        if stem.endswith("i"):  # "tried" -> "try"
            stems.append(stem[:-1] + "y")
    return any(s in VERBS for s in stems if s)


def is_verb(word: str) -> bool:
    """Whether a single word would be tagged as a verb at the start of a response.

    >>> [is_verb(w) for w in ["Explain", "Whirring", "Built", "Students", "Will", "The"]]
    [True, True, True, False, False, False]
    """
    w = word.lower()
    if not w.isalpha() or w in _MODALS:
        return False
    if w in VERBS or w in _AUXILIARY_AND_IRREGULAR or _inflects_known_verb(w):
        return True
    if w in _NOT_VERBS:
        return False
    if len(w) >= 5 and w.endswith(("ing", "ed")):
        return True
    return w.endswith(("ize", "ise", "ify")) and len(w) >= 6


def starts_with_verb(text: str) -> bool:
    """Whether the first NLTK token of ``text`` is a verb (see module notes).

    >>> starts_with_verb("Imagine a world..."), starts_with_verb("**Imagine**"), starts_with_verb("Let's go.")
    (True, False, True)
    """
    tokens = word_tokenize(text)
    return bool(tokens) and is_verb(tokens[0])
