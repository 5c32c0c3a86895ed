"""The words of the trail: action names and results as the callers write them, and their
Chinese labels for the report and the spreadsheet.

An action is `<resource>.<verb>`; a name not listed here is stored and shown as it is (the
label of its longest listed prefix, else the name itself), so a caller never waits for this
table to record something new.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SYSTEM: Final = "system"  # the actor (and role) of what no person did
CONFIG_RELOAD: Final = "config.reload"
AUDIT_GAP: Final = "audit.gap"  # written by the log itself: rows were missing at an append

ACTION_LABELS: Final[Mapping[str, str]] = {
    "alarm": "报警处置",
    "alarm.ack": "确认报警",
    "alarm.close": "关闭报警",
    "alarm.note": "报警备注",
    "command": "远程控制",
    "command.close_valve": "关闭燃气阀",
    "command.open_valve": "开启燃气阀",
    "command.trip": "脱扣断电",
    "valve.opened_on_site": "现场手动开启燃气阀",
    "maintenance.set": "设置维护",
    "maintenance.clear": "结束维护",
    "session.login": "登录",
    "session.logout": "退出登录",
    "user.add": "新增账号",
    "user.change": "修改账号",
    "user.disable": "停用账号",
    "user.password": "修改密码",
    "token.issue": "签发令牌",
    "token.revoke": "吊销令牌",
    "hazard.add": "登记隐患",
    "hazard.transition": "隐患整改状态变更",
    "hazard.edit": "修改隐患",
    "notice.issue": "签发整改通知书",
    "notice.receipt": "签收整改通知书",
    "daily_check.submit": "提交每日自查",
    "duty.set": "排班",
    "duty.handover": "交接班",
    CONFIG_RELOAD: "重新加载配置",
    AUDIT_GAP: "审计日志缺失记录",
}
RESULT_LABELS: Final[Mapping[str, str]] = {
    "ok": "成功",
    "refused": "拒绝",
    "failed": "失败",
    "locked": "已锁定",
}
ROLE_LABELS: Final[Mapping[str, str]] = {
    "duty": "值班人员",
    "safety_manager": "安全管理员",
    "legal_representative": "法定代表人",
    "bureau": "民政局",
    "bureau_leader": "民政局领导",
    "admin": "系统管理员",
    SYSTEM: "系统",
}


def action_label(action: str) -> str:
    """The Chinese label of `action`, or of its longest listed prefix, or `action`."""
    name = action
    while True:
        label = ACTION_LABELS.get(name)
        if label is not None:
            return label
        if "." not in name:
            return action
        name = name.rsplit(".", 1)[0]


def result_label(result: str) -> str:
    return RESULT_LABELS.get(result, result)


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)
