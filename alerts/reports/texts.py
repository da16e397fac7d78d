"""The reports' words in Vietnamese and English (``--lang vi|en``); figures are never translated."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "vi": {
        "periodic": "Báo cáo định kỳ về giám sát an toàn thông tin",
        "operations": "Báo cáo vận hành SOC",
        "incident": "Báo cáo sự cố an toàn thông tin mạng",
        "scope": "Phạm vi: hệ thống và cấp độ", "coverage": "Độ phủ nguồn nhật ký",
        "monitoring": "Giám sát: cảnh báo", "response": "Ứng cứu và xử lý",
        "retention": "Lưu trữ nhật ký (bằng chứng)", "rules": "Danh mục luật và nhật ký thay đổi",
        "attack": "Độ phủ MITRE ATT&CK", "integrity": "Tính toàn vẹn",
        "controls": "Đối chiếu với quy định và tiêu chuẩn", "incident_detail": "Thông tin sự cố",
        "contents": "Mục lục", "period": "Kỳ báo cáo", "scope_label": "Phạm vi", "generated": "Lập lúc",
        "notes": "Ghi chú", "source_query": "Truy vấn nguồn", "not_available": "Không có dữ liệu nguồn",
        "empty": "Không có dữ liệu trong kỳ", "due": "Hạn nộp", "page": "Trang",
        "evidenced": "có bằng chứng", "partly": "một phần", "not": "không",
    },
    "en": {
        "periodic": "Periodic security monitoring report",
        "operations": "SOC operations report",
        "incident": "Cyber-security incident report",
        "scope": "Scope: systems and security levels", "coverage": "Log-source coverage",
        "monitoring": "Monitoring: alerts", "response": "Response",
        "retention": "Retention evidence", "rules": "Rule inventory and change log",
        "attack": "MITRE ATT&CK coverage", "integrity": "Integrity",
        "controls": "Control mapping", "incident_detail": "Incident",
        "contents": "Contents", "period": "Period", "scope_label": "Scope", "generated": "Generated",
        "notes": "Notes", "source_query": "Source query", "not_available": "Not available",
        "empty": "No data in the period", "due": "Due", "page": "Page",
        "evidenced": "evidenced", "partly": "partly", "not": "not",
    },
}


def words(lang: str) -> dict[str, str]:
    return TEXTS["vi" if lang == "vi" else "en"]
