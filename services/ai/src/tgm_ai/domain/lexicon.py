"""A small customer-service lexicon: the ways customers of a shop say the same thing, folded to one
concept term (`~refund`, `~deliver`, …) that is indexed next to the words.

A paraphrase rarely repeats the stored question's words ("can I send it back" / "return policy",
"錢什麼時候退回" / "退款多久入帳"), but it names the same few things a shop's FAQ is about. Each
concept lists English phrases (matched as words, any ending: `deliver` matches `delivery`) and
Chinese phrases (matched anywhere, after the traditional -> simplified folding, so writing them in
simplified covers both scripts). Text gets a concept term once per concept and language it mentions; BM25's IDF weighs them like any other term, so a concept every passage names
counts for little.

Written for the kind of business the fleet answers for (a shop or service: orders, delivery,
payment, returns, accounts, products). `bench/rag/paraphrase.py` measures what it is worth; the
phrases were chosen looking at the `dev` half of that set only.
"""

from __future__ import annotations

import re
from functools import lru_cache

# concept: (English phrases, Chinese phrases)
CONCEPTS: dict[str, tuple[str, str]] = {
    "when": (
        "how long|when|what time|how soon|how many days|how fast",
        "多久|几天|什么时候|多长时间|几时|几号|多快|最快|要等",
    ),
    "deliver": (
        "ship|deliver|dispatch|courier|parcel|package|postage|post|mail it|send it|send out|arrive|get here",
        "寄|送到|送货|发货|出货|配送|邮寄|物流|快递|包裹|宅配|运送|运费|邮费|到货|收到货|会到|送达|什么时候发|几时发|发出",
    ),
    "receive": ("receive|get it|arrive|reach", "收到|拿到|签收|收件|到手|领"),
    "cost": (
        "cost|price|fee|charge|how much|expensive|cheap|pay extra",
        "多少钱|价格|价钱|费用|收费|手续费|便宜|贵|标价|差价",
    ),
    "free": ("free|no charge|at no cost|waive", "免费|免运|不用钱|不收费"),
    "refund": ("refund|money back|reimburse|my money", "退款|退钱|钱退|退回|钱还没回来|入账|原路退回"),
    "return": (
        "return|send back|bring back|send something back|changed my mind",
        "退货|寄回|退回|不喜欢|七天|7天",
    ),
    "cancel": (
        "cancel|revoke|call off|don't want|do not want|changed my mind",
        "取消|撤销|不要了|不想要|不买了|后悔",
    ),
    "change": (
        "change|modify|edit|switch|update|wrong|swap",
        "修改|更改|改成|改寄|改绑|换成|换一个|换别的|填错|买错|改",
    ),
    "address": ("address|where i live|location", "地址|住址|地点|新家|搬家"),
    "defect": (
        "defect|broken|broke|faulty|damage|crack|shatter|crush|dead on arrival",
        "瑕疵|坏|故障|有问题|损坏|破|裂|不能开机|坏点|碎",
    ),
    "fail": (
        "not working|doesn't work|does not work|won't|invalid|didn't|failed|fail|error|rejected|declined",
        "不能用|无效|失败|没反应|用不了|不行|错误",
    ),
    "exchange": ("exchange|replacement|swap it|another one", "换货|换新|调换|换一台|换一支|换个新"),
    "warranty": (
        "warranty|guarantee|covered|coverage|protection period",
        "保固|保修|保内|质保|保固期|管不管",
    ),
    "repair": (
        "repair|fix|mend|service centre|service center|replace|put in a new",
        "维修|送修|报修|修|修理",
    ),
    "pay": (
        "pay|payment|checkout|check out|card|transfer|wallet",
        "付款|付钱|支付|刷卡|转账|汇款|结账|付现|给钱",
    ),
    "crypto": ("crypto|usdt|tether|bitcoin|btc|stablecoin|coin", "加密货币|虚拟货币|泰达币|比特币|usdt"),
    "cod": (
        "cash on delivery|pay on arrival|pay when it arrives|pay at the door",
        "货到付款|到付|收到货才付|送到再给钱|到了再付",
    ),
    "installment": ("instal|monthly|pay over|per month|spread the payment", "分期|月供|分几个月|几期"),
    "invoice": (
        "invoice|receipt|tax id|vat number|billing document",
        "发票|收据|报账|报销|载具|专票|税号|抬头",
    ),
    "discount": (
        "discount|coupon|voucher|promo|code|deal|offer|price cut|special pricing",
        "折扣|优惠|优惠券|折价券|打折|促销|折",
    ),
    "member": ("member|vip|tier|level|rank", "会员|等级|级别|金卡|银卡|钻石卡|vip|升级"),
    "points": ("point|reward|loyalty|bonus", "点数|积分|红利|回馈"),
    "expire": ("expire|expiry|valid|lapse|use by|validity", "过期|失效|期限|有效期|能留多久|留多久"),
    "referral": ("referral|refer|invite|friend|recommend", "推荐|邀请|介绍朋友|朋友"),
    "bulk": (
        "wholesale|bulk|large quantit|in quantity|hundreds of|lots of units",
        "批发|大量|批量|一次订很多|很多台|多台|一百台|大宗",
    ),
    "store": ("store|shop|branch|showroom|physical|in person|walk in", "门市|实体店|门店|店面|现场"),
    "hours": (
        "hours|opening|open|working time|closing time|late at night",
        "营业时间|营业|几点|开到|开门|关门",
    ),
    "support": (
        "customer service|customer support|support team|support staff|agent|staff|real person|human|someone|anyone|help desk",
        "客服|人工|真人|服务人员|找人",
    ),
    "esim": ("esim|e-sim|digital sim|virtual sim|embedded sim", "esim|电子卡|虚拟卡|电子sim"),
    "compatible": (
        "compatible|compatibility|work with|work on|support my|support your|supports|supported|can use it",
        "支持|兼容|适用|能不能用|能用",
    ),
    "activate": (
        "activate|activation|install|set up|setup|turn on",
        "激活|开通|安装|启用|扫码|装卡|怎么用|如何使用|使用方法",
    ),
    "data": (
        "mobile data|data plan|traffic|gb|internet|roaming data",
        "流量|上网|数据方案|网路|网络|吃光|额度",
    ),
    "topup": ("top up|top-up|add more|recharge|buy more|extra data|refill", "加值|充值|续|加购|追加|再买"),
    "genuine": (
        "genuine|authentic|original|real thing|fake|counterfeit|copy|knock-off",
        "正品|正版|原装|原厂|假货|真货|水货",
    ),
    "stock": (
        "stock|restock|sold out|available|availability|back in",
        "库存|缺货|补货|卖完|有货|没货|到货通知|进货",
    ),
    "preorder": (
        "pre-order|preorder|reserve|reservation|launch|release date",
        "预购|预订|预约|上市|先订|订了",
    ),
    "cheaper": ("cheaper|lower price|price match|beat|match the price", "比价|更便宜|便宜|差价"),
    "gift": ("gift|wrap|present|birthday", "礼物|礼品|包装|礼盒|送人|贺卡|生日|寄给我朋友|送给朋友|给朋友"),
    "cstore": (
        "convenience store|7-eleven|7-11|family mart|familymart|pick up at",
        "超商|便利商店|全家|711|7-11|店到店|取货",
    ),
    "missing": (
        "missing|not in the box|left out|incomplete|forgot to include",
        "少了|少寄|缺少|没在|不齐|漏|少一",
    ),
    "password": (
        "password|log in|login|sign in|locked out|can't access|forgot|forgotten",
        "密码|登录|登入|验证码",
    ),
    "account": ("account|profile|my details|login details", "帐号|账户|账号|帐户|会员资料"),
    "delete": ("delete|remove my|close my|deactivate|erase|permanently", "删除|注销|关闭|清掉|永久"),
    "phone_number": ("phone number|mobile number|my number", "手机号|电话|号码|手机号码"),
    "stop_msg": (
        "unsubscribe|stop sending|quit sending|newsletter|ads|promotional|marketing|opt out",
        "退订|取消订阅|广告|推播|不要再发",
    ),
    "email": ("e-mail|email|mail|inbox|confirmation|notification", "邮件|信箱|确认信|邮箱|email|通知"),
    "customs": ("customs|duty|duties|import tax|border|vat", "关税|进口税|海关|报关"),
    "tax": ("tax|vat|gst", "税|含税|增值税"),
    "sameday": ("same day|same-day|today|express|urgent|rush|asap", "当日达|当天|今天|加急|急用|最快"),
    "battery": (
        "battery|power bank|lithium|charge|runs out",
        "电池|行动电源|充电宝|锂电池|电量|续航|掉电|耐用",
    ),
    "air": ("by air|air freight|airmail|flight|plane", "空运|飞机|航空"),
    "screen": ("screen|display|glass", "屏幕|萤幕|显示|玻璃|屏"),
    "tradein": ("trade-in|trade in|old phone|buy back|part exchange", "折价|以旧换新|旧机|回收|抵价|抵多少"),
    "unlock": (
        "unlocked|unlock|carrier|network lock|tied to a network|operator|local sim",
        "解锁|网络锁|电信|运营商|门号|卡锁",
    ),
    "charger": ("charger|plug|adapter|power brick|wall brick", "充电头|充电器|插头|豆腐头|快充"),
    "student": ("student|university|college|school|learner", "学生|大学|学校"),
    "limit": (
        "limit|maximum|how many can|per person|per customer|at most",
        "限购|上限|几台|几支|数量|一个人能|一次买|买几",
    ),
    "charged": ("charged|deducted|deduction|debited|taken from my", "扣款|扣钱|被扣|扣了"),
    "dealer": (
        "reseller|dealer|distributor|distribut|agency|partner|franchise",
        "经销|代理|分销|加盟|合作|拿货",
    ),
    "scam": (
        "scam|fake account|impersonat|pretend|fraud|claiming to be|stranger|trust",
        "诈骗|骗|冒充|假冒|假帐号",
    ),
    "telegram": ("telegram|tg group|group chat|channel", "电报|飞机群|telegram|群"),
    "holiday": (
        "holiday|weekend|sunday|saturday|public holiday",
        "假日|周末|礼拜天|周日|周六|连假|国定假日|假期",
    ),
    "hk": ("hong kong|hk|kowloon|macau|macao", "香港|澳门|九龙|港澳"),
    "giftcard": (
        "gift card|balance|stored value|store credit",
        "礼品卡|购物卡|储值卡|余额|还剩多少|卡里|还能用多少",
    ),
    "privacy": (
        "privacy|personal data|personal information|my info|third part|advertiser|sold to|who gets to see|who can see|share my|shared with",
        "隐私|个人资料|个资|资料外泄",
    ),
    "country": (
        "country|countries|abroad|overseas|international|worldwide|japan|malaysia|singapore|usa|america|korea|thailand",
        "国家|海外|国外|境外|出国|日本|马来西亚|新加坡|美国|韩国|泰国",
    ),
    "variant": ("colour|color|capacity|storage size|model|variant|black|white", "颜色|容量|款式|黑色|白色"),
}


_HAN = re.compile(r"[\u3400-\u9fff]")


def _en_pattern(phrases: str) -> str:
    # A phrase matches as whole words, any ending on its last word ("deliver" -> "delivery").
    return "|".join(rf"\b{re.escape(p)}[a-z]*" for p in phrases.split("|"))


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[str, re.Pattern[str], re.Pattern[str]]]:
    from .text import fold  # the lexicon is matched on folded text: fold its phrases the same way

    out = []
    for name, (en, zh) in CONCEPTS.items():
        # A Latin-script word in the Chinese list ("usdt", "esim") is said the same way in English.
        latin = [p for p in zh.split("|") if not _HAN.search(p)]
        han = sorted((fold(p) for p in zh.split("|") if _HAN.search(p)), key=len, reverse=True)
        en_re = re.compile(_en_pattern("|".join([en, *latin])))
        out.append((f"~{name}", en_re, re.compile("|".join(map(re.escape, han)))))
    return out


def concepts(folded: str) -> list[str]:
    """The concept terms a folded text (`text.fold`) mentions, each once: `~name` said in English,
    `~name:zh` said in Chinese. Languages are kept apart on purpose: an English question must find
    the English answer, not a Chinese FAQ that happens to be about the same thing."""
    out = []
    for term, en, zh in _compiled():
        if en.search(folded):
            out.append(term)
        if zh.search(folded):
            out.append(f"{term}:zh")
    return out
