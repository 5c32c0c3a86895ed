"""Chinese texts and template variables rendered from a notification `Message`."""

from __future__ import annotations

from gateway.notify import render
from gateway.notify.base import Message, MessageLine
from rules.model import AlarmType, Severity

SITE = "城区幸福养老服务中心"
GAS = MessageLine("一楼厨房", "gas-kitchen", "燃气泄漏", "24.5 %LEL", "2026-11-24 14:03", "未处理")
CO = MessageLine("二楼203室", "co-203", "一氧化碳超标", "180 ppm", "2026-11-24 14:04", "未处理")
GAS2 = MessageLine("三楼茶水间", "gas-3f", "燃气泄漏", None, "2026-11-24 14:05", "已确认")


def message(*lines: MessageLine, severity: str = "critical", site: str = SITE) -> Message:
    ids = tuple(f"a{i}" for i in range(len(lines)))
    return Message("xingfu", site, severity, ids, lines)


def test_every_alarm_type_severity_and_state_has_a_chinese_label() -> None:
    assert set(render.ALARM_LABELS) == {t.value for t in AlarmType}
    assert set(render.SEVERITY_LABELS) == {s.value for s in Severity}
    assert render.ALARM_LABELS["gas_leak"] == "燃气泄漏"
    assert render.ALARM_LABELS["valve_failure"] == "切断阀未关闭"
    assert render.SEVERITY_LABELS["critical"] == "紧急"
    assert render.STATE_LABELS == {
        "active": "未处理",
        "acked": "已确认",
        "cleared": "已恢复",
        "closed": "已关闭",
    }


def test_unknown_codes_show_as_themselves() -> None:
    assert render.alarm_label(AlarmType.CO) == "一氧化碳超标"
    assert render.alarm_label("new_type") == "new_type"
    assert render.severity_label("unknown") == "unknown"
    assert render.state_label("acked") == "已确认"


def test_single_alarm_text() -> None:
    assert render.text(message(GAS)) == (
        "【安全报警】城区幸福养老服务中心 一楼厨房 燃气泄漏 24.5 %LEL 2026-11-24 14:03 未处理"
    )


def test_a_line_without_value_leaves_it_out() -> None:
    assert render.line_text(GAS2) == "三楼茶水间 燃气泄漏 2026-11-24 14:05 已确认"


def test_grouped_text_has_a_header_with_the_count_then_one_line_per_alarm() -> None:
    assert render.text(message(GAS, CO, GAS2)).split("\n") == [
        "【安全报警】城区幸福养老服务中心 3处报警（紧急）",
        "1. 一楼厨房 燃气泄漏 24.5 %LEL 2026-11-24 14:03 未处理",
        "2. 二楼203室 一氧化碳超标 180 ppm 2026-11-24 14:04 未处理",
        "3. 三楼茶水间 燃气泄漏 2026-11-24 14:05 已确认",
    ]


def test_subject_names_site_and_distinct_alarms() -> None:
    assert render.subject(message(GAS)) == "【安全报警】城区幸福养老服务中心 燃气泄漏 一楼厨房"
    assert render.subject(message(GAS, CO, GAS2)) == (
        "【安全报警】城区幸福养老服务中心 燃气泄漏、一氧化碳超标 共3处"
    )


def test_markdown_lists_every_alarm_under_the_title_and_severity() -> None:
    md = render.markdown(message(GAS, CO, severity="major"))
    assert md.split("\n") == [
        "### 【安全报警】城区幸福养老服务中心",
        "",
        "**重要** 2处报警",
        "",
        "- 一楼厨房 燃气泄漏 24.5 %LEL 2026-11-24 14:03 未处理",
        "- 二楼203室 一氧化碳超标 180 ppm 2026-11-24 14:04 未处理",
    ]


def test_sms_params_single() -> None:
    assert render.sms_params(message(GAS)) == {
        "site": "城区幸福养老服务中心",
        "location": "一楼厨房",
        "alarm": "燃气泄漏",
        "time": "2026-11-24 14:03",
    }


def test_sms_params_grouped() -> None:
    params = render.sms_params(message(GAS, CO, GAS2))
    assert params == {
        "site": "城区幸福养老服务中心",
        "location": "一楼厨房等3处",
        "alarm": "燃气泄漏、一氧化碳超标",
        "time": "2026-11-24 14:03",
    }


def test_sms_params_are_capped_at_twenty_characters_with_an_ellipsis() -> None:
    long_site = "城区第一社会福利院暨幸福养老服务中心（东院区）分部"
    long_place = "综合楼一层东侧员工食堂后厨燃气灶台下方管道井"
    many = [MessageLine(long_place, "d", label, None, "2026-11-24 14:03", "未处理") for label in (
        "燃气泄漏", "一氧化碳超标", "烟雾报警", "剩余电流超限", "线缆超温", "切断阀未关闭"
    )]  # fmt: skip
    params = render.sms_params(message(*many, site=long_site))
    assert all(len(v) <= render.SMS_PARAM_MAX for v in params.values())
    assert params["site"] == long_site[:19] + "…"
    # the count survives: the location is clipped before "等6处"
    assert params["location"] == long_place[:16] + "…" + "等6处"
    assert len(params["location"]) == 20
    assert params["alarm"] == "燃气泄漏、一氧化碳超标、烟雾报警、剩余…"
    single = render.sms_params(message(many[0]))
    assert single["location"] == long_place[:19] + "…"


def test_sms_params_honour_a_smaller_cap() -> None:
    params = render.sms_params(message(GAS, CO), max_len=6)
    assert params["location"] == "一楼…等2处"
    assert all(len(v) <= 6 for v in params.values())


def test_sms_params_drop_brackets_and_line_breaks() -> None:
    # carriers read 【...】 as the SMS signature; providers refuse it inside a variable
    odd = MessageLine("【东院】\n厨房", "d", "燃气泄漏", None, "2026-11-24 14:03", "未处理")
    assert render.sms_params(message(odd))["location"] == "东院 厨房"


def test_tts_params_are_clipped_without_ellipsis() -> None:
    long_place = "综合楼一层东侧员工食堂后厨燃气灶台下方管道井"
    line = MessageLine(long_place, "d", "燃气泄漏", None, "t", "未处理")
    assert render.tts_params(message(GAS, CO)) == {
        "site": "城区幸福养老服务中心",
        "location": "一楼厨房等2处",
        "alarm": "燃气泄漏、一氧化碳超标",
    }
    assert render.tts_params(message(line))["location"] == long_place[:20]


def test_empty_message_renders_without_error() -> None:
    empty = message()
    assert render.sms_params(empty) == {"site": SITE, "location": "", "alarm": "", "time": ""}
    assert render.text(empty).startswith("【安全报警】城区幸福养老服务中心")


def test_truncate_and_clip() -> None:
    assert render.truncate("abc", 3) == "abc"
    assert render.truncate("abcd", 3) == "ab…"
    assert render.truncate("abcd", 1) == "a"
    assert render.truncate("abcd", 0) == ""
    assert render.clip_utf8("燃气泄漏", 12) == "燃气泄漏"
    clipped = render.clip_utf8("燃气泄漏", 8)  # 3 bytes a character: "燃" + "…"
    assert clipped == "燃…"
    assert len(clipped.encode()) <= 8
    assert len(render.clip_utf8("燃" * 2000, 4096).encode()) <= 4096
