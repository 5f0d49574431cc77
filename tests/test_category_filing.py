"""The filing rules of tests/data/README.md, one post each, through the shipped classifier
(keywords, clauses and the character model together)."""

from __future__ import annotations

import pytest

from handlers.intake.categories import OTHER_LEAD, CategoryModel, default_model, model_text
from handlers.intake.charmodel import shipped


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # 1. the demand decides; what is settled does not
        ("村里路灯坏了的事已经修好了。现在反映的是村民低保被停了,请民政所复核", "社会保障与救助"),
        ("两户人家为围墙吵架的事已调解好了,今天说的是村口的桥裂了,请乡里派人检测", "基础设施"),
        ("厂里欠工人的工资已经结清了,现在主要是厂子缺流动资金,贷款批不下来,想问问扶持政策", "企业与经营"),
        # 2. two demands alike, of two categories, are 其他; one singled out is that one
        ("两件事:一是村道被大车压坏了,二是低保户家里房子漏雨。两件事都挺急,请街道一并安排", "其他"),
        ("两件事:一是村道被大车压坏了,二是养猪场臭味太大。主要是先把村道修好", "基础设施"),
        # 3. the subject beats the means
        ("村民在宅基地上超面积建房被认定违建,下了限期拆除通知,本人不服,请镇里明确怎么处理这栋房子", "宅基地与农房"),
        ("路边一家店长期占道经营,桌椅摆满人行道,请执法中队管一下", "行政执法"),
        # 4. the scopes
        ("村里两个小伙子征兵体检都过了,家长不让去,请武装部来做工作", "其他"),
        ("公交车从一天四班减成两班,学生上学不方便,请乡里跟公交公司沟通", "其他"),
        ("农资店卖的复合肥是假肥料,菜苗全黄了,请市场监管查一查", "企业与经营"),
    ],
)
def test_a_post_is_filed_by_the_rules(text: str, category: str) -> None:
    assert default_model().classify(text) == category


def test_the_character_model_reads_past_what_is_settled_and_from_the_main_matter() -> None:
    post = "养猪场臭味的事已由环保处理完毕。今天反映的是村里的桥裂了"
    assert model_text(post) == "今天反映的是村里的桥裂了"
    assert model_text("村里的桥裂了,请乡里派人检测") == "村里的桥裂了,请乡里派人检测"
    only_settled = "路灯已经修好了"
    assert model_text(only_settled) == only_settled  # nothing else to read


def test_a_strong_word_of_the_file_need_only_pass_other() -> None:
    post = "非洲猪瘟的事请防疫站来看看"
    assert CategoryModel({}, shipped()).classify(post) == "其他"  # the model alone does not know it
    edited = CategoryModel.from_yaml("环境与生态:\n  强: [非洲猪瘟]\n", chars=shipped())
    category, total = edited.explain(post)
    # it passes 其他 by less than a post without a 强 word would need
    assert category == "环境与生态" and total["环境与生态"] - total["其他"] < OTHER_LEAD
