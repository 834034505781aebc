"""Procedure titles in the shape of the national catalogue, for title-only benchmark packs.

An imported catalogue is thousands of titles such as "Cấp lại giấy phép kinh doanh rượu cho
tổ chức": the same few actions, shared administrative words ("giấy phép", "chứng nhận", "đăng
ký", "hộ kinh doanh") and a subject that tells them apart. These are generated from actions,
subjects and qualifiers of procedures for businesses and organisations, which the bundled pack
does not cover, so every title is a hard distractor for a citizen's question and never its right
answer. Illustrative: not the official catalogue.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random

from content.models import FaqEntry

ACTIONS = (
    "Cấp",
    "Cấp lại",
    "Cấp đổi",
    "Gia hạn",
    "Điều chỉnh",
    "Thu hồi",
    "Đăng ký",
    "Đăng ký thay đổi nội dung",
    "Xác nhận",
    "Công nhận",
    "Thẩm định hồ sơ",
    "Cho phép",
    "Chấm dứt hiệu lực",
    "Sửa đổi, bổ sung",
    "Đề nghị cấp",
)
SUBJECTS = (
    "giấy phép kinh doanh rượu",
    "chứng chỉ hành nghề dược",
    "giấy phép kinh doanh thuốc lá",
    "giấy chứng nhận đủ điều kiện an toàn thực phẩm",
    "giấy phép khai thác thủy sản",
    "giấy phép hoạt động điện lực",
    "chứng chỉ hành nghề kiến trúc",
    "giấy phép tổ chức biểu diễn nghệ thuật",
    "giấy phép tổ chức lễ hội",
    "giấy phép xuất bản bản tin",
    "giấy phép phổ biến phim",
    "giấy phép hoạt động giáo dục nghề nghiệp",
    "giấy phép thành lập trường mầm non tư thục",
    "giấy phép hoạt động phòng khám tư nhân",
    "chứng chỉ hành nghề khám bệnh",
    "giấy phép nhập khẩu thuốc thú y",
    "giấy chứng nhận kiểm dịch động vật",
    "giấy phép kinh doanh vận tải bằng xe ô tô",
    "phù hiệu xe kinh doanh vận tải",
    "giấy phép xả nước thải vào nguồn nước",
    "giấy phép khai thác khoáng sản",
    "giấy phép khai thác nước dưới đất",
    "báo cáo đánh giá tác động môi trường",
    "giấy phép môi trường",
    "giấy chứng nhận đăng ký đầu tư",
    "giấy phép thành lập văn phòng đại diện",
    "giấy chứng nhận đăng ký hợp tác xã",
    "giấy phép hoạt động bảo tàng ngoài công lập",
    "giấy phép kinh doanh dịch vụ karaoke",
    "giấy phép kinh doanh dịch vụ lữ hành nội địa",
    "thẻ hướng dẫn viên du lịch",
    "quyết định công nhận hạng cơ sở lưu trú du lịch",
    "giấy phép sử dụng tần số vô tuyến điện",
    "giấy phép thiết lập trang thông tin điện tử tổng hợp",
    "giấy phép hoạt động in",
    "giấy phép bưu chính",
    "giấy chứng nhận cửa hàng bán lẻ xăng dầu",
    "giấy chứng nhận đủ điều kiện thương nhân kinh doanh khí",
    "giấy chứng nhận đủ điều kiện sản xuất phân bón",
    "mã số vùng trồng",
    "giấy chứng nhận cơ sở nuôi trồng thủy sản",
    "chứng chỉ hành nghề thú y",
    "giấy phép tổ chức giải thi đấu thể thao",
    "giấy phép sử dụng vật liệu nổ công nghiệp",
    "giấy phép vận chuyển hàng nguy hiểm",
    "giấy chứng nhận đủ điều kiện về an ninh, trật tự",
    "giấy phép hoạt động cho thuê lại lao động",
    "giấy phép hoạt động dịch vụ việc làm",
    "giấy chứng nhận doanh nghiệp khoa học và công nghệ",
    "giấy phép hoạt động đo lường",
    "giấy chứng nhận hợp chuẩn sản phẩm",
    "giấy phép quảng cáo ngoài trời",
    "giấy phép kinh doanh hoạt động thể thao",
    "giấy phép thăm dò nước dưới đất",
    "giấy phép hoạt động xây dựng cho nhà thầu nước ngoài",
    "chứng chỉ năng lực hoạt động xây dựng",
    "giấy phép nhập khẩu thiết bị in",
    "giấy chứng nhận đủ điều kiện kinh doanh dịch vụ bảo vệ",
    "giấy phép thành lập quỹ xã hội, quỹ từ thiện",
    "giấy phép hoạt động của cơ sở trợ giúp xã hội ngoài công lập",
    "giấy phép sản xuất rượu thủ công nhằm mục đích kinh doanh",
    "giấy chứng nhận lưu hành tự do",
    "giấy phép kinh doanh thuốc bảo vệ thực vật",
    "giấy chứng nhận đủ điều kiện buôn bán thuốc thú y",
    "giấy phép vận hành hồ chứa",
    "giấy phép hoạt động trung tâm ngoại ngữ, tin học",
    "giấy phép liên kết đào tạo với nước ngoài",
    "giấy phép cung cấp dịch vụ trò chơi điện tử",
    "giấy chứng nhận điểm cung cấp dịch vụ trò chơi điện tử công cộng",
    "giấy phép sản xuất thức ăn chăn nuôi",
)
QUALIFIERS = (
    "",
    " cho tổ chức",
    " cho cá nhân",
    " cho doanh nghiệp có vốn đầu tư nước ngoài",
    " trong trường hợp bị mất, hỏng",
    " do thay đổi tên, địa chỉ",
    " tại cấp tỉnh",
    " tại cấp xã",
    " đối với cơ sở sản xuất",
    " đối với hộ kinh doanh",
)


def catalogue_entries(count: int, template: FaqEntry, seed: int = 11) -> list[FaqEntry]:
    """``count`` title-only entries (in a fixed random order of all combinations)."""
    combos = list(itertools.product(ACTIONS, SUBJECTS, QUALIFIERS))
    if count > len(combos):
        raise ValueError(f"at most {len(combos)} catalogue titles")
    random.Random(seed).shuffle(combos)
    return [
        FaqEntry(
            id=f"catalogue-{i}",
            title=f"{action} {subject}{qualifier}",
            topic=template.topic,
            answer="Nội dung minh họa.",
            source="Mẫu minh họa",
            reviewed=dt.date(2026, 1, 1),
        )
        for i, (action, subject, qualifier) in enumerate(combos[:count])
    ]
