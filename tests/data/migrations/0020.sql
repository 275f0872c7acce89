-- gengbao golden data at schema revision 0020 (written by python -m tests.support.migrations; do not edit)
INSERT INTO "units" ("code", "name", "level", "parent_code", "path", "depth", "active") VALUES ('ddk', '大渡口区', 'district', NULL, '/ddk/', 0, TRUE);
INSERT INTO "units" ("code", "name", "level", "parent_code", "path", "depth", "active") VALUES ('ddk-bq', '八桥镇', 'town', 'ddk', '/ddk/ddk-bq/', 1, TRUE);
INSERT INTO "units" ("code", "name", "level", "parent_code", "path", "depth", "active") VALUES ('ddk-bq-xh', '新华村', 'village', 'ddk-bq', '/ddk/ddk-bq/ddk-bq-xh/', 2, TRUE);
INSERT INTO "units" ("code", "name", "level", "parent_code", "path", "depth", "active") VALUES ('ddk-bq-xh-1', '新华村一组', 'group', 'ddk-bq-xh', '/ddk/ddk-bq/ddk-bq-xh/ddk-bq-xh-1/', 3, TRUE);
INSERT INTO "people" ("id", "name", "phone", "email", "webhook", "active", "kind") VALUES ('p-bq-xh-1-member', '毛海涛', NULL, 'bq-xh-1-member@example.org', NULL, TRUE, 'person');
INSERT INTO "people" ("id", "name", "phone", "email", "webhook", "active", "kind") VALUES ('p-bq-xh-leader', '韦春梅', NULL, 'bq-xh-leader@example.org', NULL, TRUE, 'person');
INSERT INTO "person_roles" ("person_id", "unit_code", "role", "active") VALUES ('p-bq-xh-1-member', 'ddk-bq-xh-1', 'member', TRUE);
INSERT INTO "person_roles" ("person_id", "unit_code", "role", "active") VALUES ('p-bq-xh-leader', 'ddk-bq-xh', 'leader', TRUE);
INSERT INTO "workflow_versions" ("workflow", "version", "content_hash", "title", "source", "path", "loaded_at") VALUES ('farmland_violation', 1, 'c909af1805eb30345a11a7827c4b9101097a35f1ec768bcb7307d2def984db0a', '违法占用耕地案件处置', '# =============================================================================
#  违法占用耕地案件处置流程  ·  Farmland-violation case workflow
# =============================================================================
#
#  依据 Source: 大渡口府办发〔2022〕82号《关于建立耕地保护网格化动态巡查监管机制的通知》
#  原则 Principle: 早发现、早制止、严查处 (discover early, stop early, punish strictly)
#
#  主线 Main line（状态名 state  ──操作 trigger──▶  下一状态）:
#
#    ① discovered 待制止
#         ├─ stop ──────▶ ② stopped 已制止待报告
#         └─ stop_fail ─▶ ③ stop_failed 制止无效待报告
#    ②/③ ─ report（村报镇街）或 auto_report（逾期由系统转报）─▶ ④
#    ④ reported 待镇街核实
#         ├─ dismiss ─────▶ dismissed 已排除（终态，不构成违法）
#         └─ confirm ─────▶ 分级处置 tiered handling，按条件取第一条成立的：
#               ├─ 重点区域/恶劣影响/面积较大 ─▶ ⑤c joint_enforcement 联合执法待立案
#               ├─ 难度大/可能影响稳定 ───────▶ ⑤b district_handling 区级处置待立案
#               └─ 其余（简单、轻微）─────────▶ ⑤a town_handling 镇街处置待立案
#                    ├─ report_in_writing ─▶ ⑤b   （书面报告区专班）
#                    ├─ organise_joint ────▶ ⑤c   （区组织联合执法，⑤b 亦可）
#                    └─ order_rectify ─────▶ ⑦    （简易处置，直接责令整改）
#    ⑤a/⑤b/⑤c ─ file_case ─▶ ⑥ filed 已立案待决定
#                              ├─ extend_decision ─▶ ⑥'' decision_extended 决定延期
#                              └─ decide（⑥ 或 ⑥''）─▶ ⑦ rectifying 整改中
#    ⑦ rectifying ─ rectified ─▶ ⑧ rectify_check 整改待验收
#                                   ├─ accept ─▶ closed 已销号（终态）
#                                   └─ reject ─▶ ⑦（重定整改期限）
#
#  时限 Deadlines: 每个等待中的状态都有时限、催办和逐级上报（村 → 镇街 → 区）。
#  Every waiting state has a deadline, reminders before it, and escalation
#  rungs after it that climb the grid: village → town → district.
#  以下时限为常见默认值，可按本地规定修改，引擎不写死任何数字。
#  The figures below are common defaults; change them here, not in code.
#
#  时长写法 Durations: 30m（分钟）· 2h（小时）· 3d（自然日，=72h）· "10 working days"（工作日，按法定节假日及调休计算）
#  角色写法 Roles: LEVEL.ROLE — 级别 district | town | village | group；
#                 角色 leader 网格长 · member 网格员 · office 专班办公室 · duty 值班人员
#                 · dept_planning 区规划自然资源局 · dept_agri 区农业农村委；
#                 system = 引擎自身（用于超时自动触发）the engine itself.
# =============================================================================

workflow: farmland_violation
title: 违法占用耕地案件处置
description: >-
  耕地保护网格化动态巡查监管：对违法占用耕地行为第一时间发现、第一时间制止，
  制止无效的第一时间报告镇（街道），镇（街道）现场核实后分级处置，
  整改到位并经镇（街道）验收后销号。
  Grid-based supervision of illegal farmland occupation, from discovery to close-out.
initial: discovered
timezone: Asia/Shanghai

# 谁可以登记线索、新建案件。Who may open a case.
# 村、组网格员巡查发现；镇街巡查、值班（12345 热线、视频监控）；区专班与职能部门（卫片图斑、年度变更调查）。
roles:
  - group.member
  - village.member
  - village.leader
  - town.leader
  - town.office
  - town.duty
  - district.office
  - district.duty
  - district.dept_planning
  - district.dept_agri

# 谁可以指派、改派承办人（签收后亦可改派）。Who may assign or reassign a case.
assigners: [village.leader, town.leader, district.leader]
# 督办：上级网格对下级在办案件发督办通知，责任单位网格长限期回复或推进办理；
# 逾期未回复的，提醒并上报区专班办公室，记入考评和问责台账。
# Supervision (督办): a higher level''s notice on an open case, answered by the
# case moving on or by a written reply (gengbao case supervise / reply).
supervision:
  roles: [district.leader, district.office, town.leader]
  deadline:
    within: 3 working days
    remind: [1d]
    escalate:
      - after: 0m
        notify: [district.office]

# -----------------------------------------------------------------------------
#  案件字段 Case fields
#  立案时填写基本信息；各环节的记录字段由对应操作的 payload 写入（同名即更新）。
#  Basic facts are given when the case is opened; per-step notes are written
#  by the payload of the step that produces them (same name = updates field).
# -----------------------------------------------------------------------------
fields:
  # ---- 基本信息 Basic facts ----
  address:
    type: string
    title: 地址
    description: 违法用地所在位置的文字描述，如“八桥镇新华村三组王家湾”。
    required: true
  location:
    type: point
    title: 坐标
    description: 现场定位（经纬度），可由手机巡查端自动获取。
  land_type:
    type: enum
    title: 地类
    description: 被占用土地的地类；决定分级处置的面积门槛。
    required: true
    values: [永久基本农田, 一般耕地, 其他]
  area_m2:
    type: number
    title: 占地面积（平方米）
    description: 实测或估算的占地面积；1 亩 = 666.67 平方米。现场核实时必须填写。
    min: 0
  violation_kind:
    type: enum
    title: 违法类型
    values: [违法建房, 挖湖造景, 耕地植树, 采石挖砂, 堆放废弃物, 大棚房, 其他]
  party:
    type: string
    title: 违法主体
    description: 违法用地的个人或单位名称；发现时不明可暂空。
  source:
    type: enum
    title: 线索来源
    required: true
    values: [村级巡查, 镇级巡查, 卫片图斑, 12345热线, 视频监控, 群众举报, 年度变更调查]
  photos:
    type: list
    items: string
    title: 现场照片
    description: 现场照片或附件的链接/编号。各环节提交时应给出完整列表（同名字段整体覆盖）。

  # ---- 分级处置依据 Tiering flags (set at verification) ----
  complex:
    type: boolean
    title: 处置难度大或可能引发社会稳定问题
    default: false
  key_area:
    type: boolean
    title: 位于重点区域
    default: false
  bad_impact:
    type: boolean
    title: 造成恶劣影响
    default: false

  # ---- 各环节记录 Per-step notes ----
  stop_note:
    type: text
    title: 制止情况
  stop_notice_no:
    type: string
    title: 制止通知书编号
  report_note:
    type: text
    title: 报告说明
  verify_note:
    type: text
    title: 现场核实意见
  written_report:
    type: text
    title: 书面报告
    description: 镇（街道）报区耕保建设专班办公室及职能部门的书面报告（文号及摘要）。
  joint_plan:
    type: text
    title: 联合执法方案
  case_no:
    type: string
    title: 立案编号
  decision:
    type: text
    title: 处理决定
  extend_reason:
    type: text
    title: 延期理由
  rectify_kind:
    type: enum
    title: 整改方式
    values: [拆除, 恢复原状, 复耕]
  rectify_by:
    type: date
    title: 整改期限
    description: 处理决定确定的整改截止日期；“整改中”状态以此为时限。
  demolition_record:
    type: text
    title: 拆除及复耕记录
  rectify_photos:
    type: list
    items: string
    title: 整改后照片
    description: 单独保存，不覆盖发现、核实时的现场照片。Kept apart from the on-site evidence.
  check_note:
    type: text
    title: 整改验收意见
  close_reason:
    type: text
    title: 排除理由
    description: 核实不构成违法时填写，如“已办理设施农用地备案”。

# -----------------------------------------------------------------------------
#  状态 States
#  deadline.within   该状态须在多长时间内办结 / how long the state may last
#  deadline.remind   到期前多久催办 / reminders before the deadline
#  deadline.escalate 超时后逐级上报 / rungs after the deadline (after = time past due)
#  超时催办统一使用名为 reminder 的模板；rung 的 template 指定超时通知模板。
# -----------------------------------------------------------------------------
states:

  # ① 发现 —— 村（社区）第一时间到场制止 ------------------------------------
  discovered:
    title: 待制止
    description: 已发现疑似违法占用耕地，村（社区）网格员须第一时间到场制止。
    deadline:
      within: 2h                    # 发现后 2 小时内制止 / stop within 2 h of discovery
      remind: [1h, 30m]
      escalate:
        - after: 0m                 # 一到期：村网格长、镇街值班与专班办公室
          notify: [village.leader, town.duty, town.office]
          template: overdue
        - after: 2h                 # 超时 2 小时：镇街网格长督办
          notify: [town.leader, town.office]
          template: supervise
        - after: 24h                # 超时 24 小时：区专班办公室督办
          notify: [district.office, district.duty]
          template: supervise

  # ② 已制止 —— 情节简单轻微的，仍须报镇街依法处置 ----------------------------
  stopped:
    title: 已制止待报告
    description: 已现场制止；情况简单、情节轻微的，也须报告镇（街道）依法处置。
    deadline:
      within: 24h
      remind: [4h, 1h]
      escalate:
        - after: 0m
          notify: [village.leader, town.office]
          template: overdue
        - after: 12h                # 仍未报告：系统自动转报镇街 / auto-report to the town
          notify: [town.leader, town.office]
          template: supervise
          trigger: auto_report

  # ③ 制止无效 —— 第一时间报告镇（街道） -------------------------------------
  stop_failed:
    title: 制止无效待报告
    description: 现场制止无效，村（社区）须第一时间报告镇（街道）。
    deadline:
      within: 2h                    # 制止无效后 2 小时内报告 / report within 2 h
      remind: [1h, 30m]
      escalate:
        - after: 0m
          notify: [village.leader, town.duty, town.office]
          template: overdue
        - after: 1h                 # 再超 1 小时：系统自动转报，镇街网格长知悉
          notify: [town.leader, town.duty]
          template: supervise
          trigger: auto_report

  # ④ 待镇街核实 —— 镇（街道）第一时间到场核实 -------------------------------
  reported:
    title: 待镇街核实
    description: 镇（街道）接报后第一时间到达现场核实，确认是否构成违法及处置层级。
    deadline:
      within: 24h                   # 24 小时内到场核实 / on site within 24 h
      remind: {every: 8h}           # 每 8 小时催办一次 / a reminder every 8 h
      escalate:
        - after: 0m
          notify: [town.leader, town.office]
          template: overdue
        - after: 24h
          notify: [district.office]
          template: supervise
        - after: 72h                # 超时 3 天：分管副区长（一级网格长）
          notify: [district.leader, district.office]
          template: supervise
    # 签收：镇街专班 2 小时内签收，否则告知镇街网格长。
    # 签收 (ack): someone of the town acknowledges within 2 h, or the town leader is told.
    ack:
      within: 2h
      remind: [1h]
      escalate:
        - after: 0m
          notify: [town.leader]
    # 移送：不属本镇街管辖的，移送其他镇街或报区；接收单位 3 个工作日内受理或退回。
    # Transfer: a case outside the town''s remit goes to another town or up to the district.
    transfer:
      to: [town, district]
      roles: [town.office, town.leader]
      accept_roles: [leader, office]
      deadline:
        within: "3 working days"
        remind: [1d]
        escalate:
          - after: 0m
            notify: [district.office]

  # ⑤ 分级处置 Tiered handling ----------------------------------------------
  #   a) 镇街处置：情况简单、情节轻微 —— 村督促消除违法状态，镇街依法处置
  town_handling:
    title: 镇街处置待立案
    description: 情况简单、情节轻微，由镇（街道）依法处置，村（社区）督促违法主体消除违法状态。
    deadline:
      within: "10 working days"     # 10 个工作日内立案 / file within 10 working days
      remind: [2d, 1d]
      escalate:
        - after: 0m
          notify: [town.leader, town.office]
          template: overdue
        - after: 24h
          notify: [district.office]
          template: supervise
        - after: 5d
          notify: [district.leader, district.office]
          template: supervise
    # 转办：移交区级职能部门（规划自然资源、农业农村）；3 个工作日内受理或退回。
    # Transfer to a district department, which accepts or returns it within 3 working days.
    transfer:
      to: [district.dept_planning, district.dept_agri]
      roles: [town.office, town.leader]
      deadline:
        within: "3 working days"
        remind: [1d]
        escalate:
          - after: 0m
            notify: [district.office]

  #   b) 区级处置：处置难度大、可能引发社会稳定问题 —— 镇街书面报告区专班及职能部门
  district_handling:
    title: 区级处置待立案
    description: 处置难度较大或可能引发社会稳定问题，由区耕保建设专班办公室及相应职能部门依法处置。
    deadline:
      within: "10 working days"
      remind: [2d, 1d]
      escalate:
        - after: 0m
          notify: [district.office, district.dept_planning, district.dept_agri]
          template: overdue
        - after: 3d
          notify: [district.leader]
          template: supervise
    # 转办：移交区级职能部门（规划自然资源、农业农村）；3 个工作日内受理或退回。
    # Transfer to a district department, which accepts or returns it within 3 working days.
    transfer:
      to: [district.dept_planning, district.dept_agri]
      roles: [district.office, district.leader]
      deadline:
        within: "3 working days"
        remind: [1d]
        escalate:
          - after: 0m
            notify: [district.office]

  #   c) 联合执法：重点区域、恶劣影响或面积较大 —— 区组织镇街及职能部门联合执法
  joint_enforcement:
    title: 联合执法待立案
    description: 重点区域、造成恶劣影响或违法面积较大，由区组织所在镇（街道）及各职能部门联合执法。
    deadline:
      within: "10 working days"
      remind: [2d, 1d]
      escalate:
        - after: 0m
          notify: [district.office, town.leader]
          template: overdue
        - after: 3d
          notify: [district.leader, district.office]
          template: supervise
    # 会签 Countersign: 区规划自然资源局、区农业农村委和所在镇（街道）各自签署（或说明理由拒签），
    # 全部签署后方可立案（file_case）。各方 5 个工作日内办理，到期前 1 天催办，逾期报区专班办公室。
    # Each party signs (or refuses with a reason); file_case is allowed once all have signed.
    countersign:
      need: all
      parties:
        - role: district.dept_planning
          title: 区规划自然资源局
        - role: district.dept_agri
          title: 区农业农村委
        - role: town.leader
          title: 所在镇（街道）
      deadline:
        within: "5 working days"
        remind: [1d]
        escalate:
          - after: 0m
            notify: [district.office]

  # ⑥ 已立案 —— 立案之日起 60 日内作出处理决定 --------------------------------
  filed:
    title: 已立案待决定
    description: 已立案查处，应自立案之日起 60 日内作出处理决定；情况复杂的可延期 30 日。
    deadline:
      within: 60d
      remind: [7d, 1d]
      escalate:
        - after: 0m
          notify: [town.leader, town.office, district.office]
          template: overdue
        - after: 7d
          notify: [district.leader]
          template: supervise

  # ⑥'' 决定延期 —— 仍从“已立案”起算，共 90 日 ---------------------------------
  decision_extended:
    title: 决定延期
    description: 经批准延期，处理决定期限为自立案之日起 90 日（60 日 + 延长 30 日）。
    deadline:
      within: 90d
      from: filed                   # 从首次进入“已立案”起算 / counted from filing, not from the extension
      remind: [7d, 1d]
      escalate:
        - after: 0m
          notify: [town.leader, district.office]
          template: overdue
        - after: 7d
          notify: [district.leader]
          template: supervise

  # ⑦ 整改中 —— 以处理决定确定的整改期限为准 ----------------------------------
  rectifying:
    title: 整改中
    description: 违法主体按处理决定拆除、恢复原状或复耕；村（社区）督促并协助，镇（街道）组织实施。
    deadline:
      until: rectify_by             # 期限取自字段“整改期限” / the deadline is the rectify_by date
      remind: [3d, 1d]
      escalate:
        - after: 0m
          notify: [village.leader, town.leader, town.office]
          template: overdue
        - after: 3d
          notify: [district.office]
          template: supervise
        - after: 10d
          notify: [district.leader, district.office]
          template: supervise

  # ⑧ 整改待验收 —— 镇（街道）现场验收 ---------------------------------------
  rectify_check:
    title: 整改待验收
    description: 整改完成，镇（街道）到现场验收：合格则销号，不合格则退回继续整改。
    deadline:
      within: "5 working days"
      remind: [1d]
      escalate:
        - after: 0m
          notify: [town.leader, town.office]
          template: overdue
        - after: 24h
          notify: [district.office]
          template: supervise

  # ⑨ 终态 Final states --------------------------------------------------------
  closed:
    title: 已销号
    description: 违法状态已消除并经镇（街道）验收，案件销号。
    final: true
  dismissed:
    title: 已排除
    description: 经镇（街道）现场核实不构成违法占用耕地，案件办结（须填写排除理由）。
    final: true

# -----------------------------------------------------------------------------
#  操作 Transitions
#  roles    谁可以执行 / who may fire it
#  requires 必填的 payload 字段 / payload fields that must be given
#  payload  本操作可提交的数据；与案件字段同名的会写回案件 / data of the step
#  when     条件；同一操作有多条时，按顺序取第一条成立的 / guard; first true wins
#  notify   通知谁；template 用哪个通知模板 / who is told, with which template
# -----------------------------------------------------------------------------
transitions:

  # ---- ② 制止 Stop ----------------------------------------------------------
  - trigger: stop
    from: discovered
    to: stopped
    title: 现场制止成功
    description: 网格员到场制止，违法行为已停止。
    roles: [group.member, village.member, village.leader, town.duty, town.office]
    requires: [stop_note]
    payload:
      stop_note: {type: text, title: 制止情况}
      stop_notice_no: {type: string, title: 制止通知书编号}
      party: {type: string, title: 违法主体}
      photos: {type: list, items: string, title: 现场照片}
    notify: [village.leader]
    template: case_stopped

  - trigger: stop_fail
    from: discovered
    to: stop_failed
    title: 制止无效
    description: 已到场制止，但违法行为未停止（拒不停工、继续施工等）。
    roles: [group.member, village.member, village.leader, town.duty, town.office]
    requires: [stop_note]
    payload:
      stop_note: {type: text, title: 制止情况}
      stop_notice_no: {type: string, title: 制止通知书编号}
      party: {type: string, title: 违法主体}
      photos: {type: list, items: string, title: 现场照片}
    # 制止无效是紧急情况：镇街值班与专班办公室立即知悉 / urgent: the town learns at once
    notify: [village.leader, town.duty, town.office]
    template: stop_failed
    urgent: true

  # ---- ③ 报告 Report to the town -------------------------------------------
  - trigger: report
    from: [stopped, stop_failed]
    to: reported
    title: 报告镇街
    description: 村（社区）将案件报告镇（街道）：制止无效的第一时间报告；已制止的简单轻微案件也须报告。
    roles: [group.member, village.member, village.leader]
    requires: [report_note]
    payload:
      report_note: {type: text, title: 报告说明}
      photos: {type: list, items: string, title: 现场照片}
    notify: [town.leader, town.office, town.duty]
    template: reported_to_town

  # 超时未报告时由系统自动转报（见 stopped / stop_failed 的 escalate.trigger）
  # Fired by the engine from an escalation rung when the village does not report.
  - trigger: auto_report
    from: [stopped, stop_failed]
    to: reported
    title: 超时自动转报镇街
    description: 村（社区）逾期未报告，系统自动将案件转至镇（街道）核实，并记录逾期。
    roles: [system]
    notify: [town.leader, town.office, town.duty]
    template: auto_reported

  # ---- ④ 核实 Verify on site ----------------------------------------------
  - trigger: dismiss
    from: reported
    to: dismissed
    title: 核实不构成违法
    description: 镇（街道）现场核实，不构成违法占用耕地（如已有合法用地手续），填写理由后办结。
    roles: [town.leader, town.office, town.duty]
    requires: [verify_note, close_reason]
    payload:
      verify_note: {type: text, title: 现场核实意见}
      close_reason: {type: text, title: 排除理由}
      photos: {type: list, items: string, title: 现场照片}
    notify: [village.leader, district.office]
    template: case_dismissed

  # 核实确认违法后分级处置：三条 confirm 按顺序判断，取第一条成立的。
  # Confirmed cases are tiered: the three `confirm` rules are tried in order.
  # 面积门槛 Area thresholds: 永久基本农田 ≥ 5 亩 (3333.35 m²)，其他耕地 ≥ 10 亩 (6666.7 m²)。

  #   (1) 重点区域 / 恶劣影响 / 面积较大 → 区组织联合执法
  - trigger: confirm
    from: reported
    to: joint_enforcement
    title: 核实确认：报区联合执法
    description: 位于重点区域、造成恶劣影响或违法面积较大，报区组织联合执法。
    roles: [town.leader, town.office, town.duty]
    requires: [verify_note, land_type, area_m2, violation_kind]
    payload:
      verify_note: {type: text, title: 现场核实意见}
      land_type: {type: enum, title: 地类, values: [永久基本农田, 一般耕地, 其他]}
      area_m2: {type: number, title: 占地面积（平方米）, min: 0}
      violation_kind:
        type: enum
        title: 违法类型
        values: [违法建房, 挖湖造景, 耕地植树, 采石挖砂, 堆放废弃物, 大棚房, 其他]
      party: {type: string, title: 违法主体}
      location: {type: point, title: 坐标}
      complex: {type: boolean, title: 处置难度大或可能引发社会稳定问题}
      key_area: {type: boolean, title: 位于重点区域}
      bad_impact: {type: boolean, title: 造成恶劣影响}
      photos: {type: list, items: string, title: 现场照片}
    when: >-
      key_area or bad_impact
      or (land_type == "永久基本农田" and area_m2 >= 3333.35)
      or (land_type != "永久基本农田" and area_m2 >= 6666.7)
    notify: [district.leader, district.office, district.dept_planning, district.dept_agri, town.leader]
    template: tier_joint

  #   (2) 处置难度大、可能引发社会稳定问题 → 区专班及职能部门处置
  - trigger: confirm
    from: reported
    to: district_handling
    title: 核实确认：报区级处置
    description: 处置难度较大或可能引发社会稳定问题，镇（街道）书面报告区专班办公室及职能部门处置。
    roles: [town.leader, town.office, town.duty]
    requires: [verify_note, land_type, area_m2, violation_kind]
    payload:                        # 与上一条相同的核实数据 / same data as above
      verify_note: {type: text, title: 现场核实意见}
      land_type: {type: enum, title: 地类, values: [永久基本农田, 一般耕地, 其他]}
      area_m2: {type: number, title: 占地面积（平方米）, min: 0}
      violation_kind:
        type: enum
        title: 违法类型
        values: [违法建房, 挖湖造景, 耕地植树, 采石挖砂, 堆放废弃物, 大棚房, 其他]
      party: {type: string, title: 违法主体}
      location: {type: point, title: 坐标}
      complex: {type: boolean, title: 处置难度大或可能引发社会稳定问题}
      key_area: {type: boolean, title: 位于重点区域}
      bad_impact: {type: boolean, title: 造成恶劣影响}
      photos: {type: list, items: string, title: 现场照片}
    when: complex
    notify: [district.office, district.dept_planning, district.dept_agri]
    template: tier_district

  #   (3) 其余情形（简单、轻微）→ 镇街处置；兜底，无条件
  #       Otherwise (simple, minor): the town handles it. Unguarded fallback, keep it last.
  - trigger: confirm
    from: reported
    to: town_handling
    title: 核实确认：镇街处置
    description: 情况简单、情节轻微，由镇（街道）依法处置；同时报区级职能部门知悉。
    roles: [town.leader, town.office, town.duty]
    requires: [verify_note, land_type, area_m2, violation_kind]
    payload:
      verify_note: {type: text, title: 现场核实意见}
      land_type: {type: enum, title: 地类, values: [永久基本农田, 一般耕地, 其他]}
      area_m2: {type: number, title: 占地面积（平方米）, min: 0}
      violation_kind:
        type: enum
        title: 违法类型
        values: [违法建房, 挖湖造景, 耕地植树, 采石挖砂, 堆放废弃物, 大棚房, 其他]
      party: {type: string, title: 违法主体}
      location: {type: point, title: 坐标}
      complex: {type: boolean, title: 处置难度大或可能引发社会稳定问题}
      key_area: {type: boolean, title: 位于重点区域}
      bad_impact: {type: boolean, title: 造成恶劣影响}
      photos: {type: list, items: string, title: 现场照片}
    notify: [town.leader, town.office, village.leader, district.dept_planning]
    template: tier_town

  # ---- ⑤ 处置层级调整 Re-tiering ---------------------------------------------
  - trigger: report_in_writing
    from: town_handling
    to: district_handling
    title: 书面报告区专班
    description: 镇街处置中发现难度较大或可能引发社会稳定问题，书面报告区耕保建设专班办公室及职能部门。
    roles: [town.leader, town.office]
    requires: [written_report]
    payload:
      written_report: {type: text, title: 书面报告}
      complex: {type: boolean, title: 处置难度大或可能引发社会稳定问题}
    notify: [district.office, district.dept_planning, district.dept_agri]
    template: written_report

  - trigger: organise_joint
    from: [town_handling, district_handling]
    to: joint_enforcement
    title: 组织联合执法
    description: 区级决定组织所在镇（街道）及各职能部门联合执法。
    roles: [district.leader, district.office]
    requires: [joint_plan]
    payload:
      joint_plan: {type: text, title: 联合执法方案}
      key_area: {type: boolean, title: 位于重点区域}
      bad_impact: {type: boolean, title: 造成恶劣影响}
    notify: [town.leader, town.office, district.dept_planning, district.dept_agri]
    template: tier_joint

  # ---- ⑤ 立案 File the case (10 working days) ------------------------------
  #   同一操作可按来源状态分开写，分别授权：镇街案件由镇街立案，区级案件由区专班或职能部门立案。
  #   One trigger, two rules by source state, each with its own roles.
  - trigger: file_case
    from: town_handling
    to: filed
    title: 立案查处
    roles: [town.leader, town.office]
    requires: [case_no]
    payload:
      case_no: {type: string, title: 立案编号}
    notify: [district.dept_planning, district.office]
    template: case_filed

  - trigger: file_case
    from: [district_handling, joint_enforcement]
    to: filed
    title: 立案查处
    roles: [district.office, district.dept_planning, district.dept_agri]
    requires: [case_no]
    payload:
      case_no: {type: string, title: 立案编号}
    notify: [town.leader, town.office, district.office]
    template: case_filed

  #   简易处置：情节轻微、当事人愿意自行整改的，镇街直接责令限期整改，不经立案。
  #   Simple procedure: the town orders rectification directly, without filing.
  - trigger: order_rectify
    from: town_handling
    to: rectifying
    title: 责令限期整改
    description: 情况简单、情节轻微，镇（街道）直接责令违法主体限期拆除或恢复原状，村（社区）督促落实。
    roles: [town.leader, town.office]
    requires: [decision, rectify_kind, rectify_by]
    payload:
      decision: {type: text, title: 处理决定}
      rectify_kind: {type: enum, title: 整改方式, values: [拆除, 恢复原状, 复耕]}
      rectify_by: {type: date, title: 整改期限}
    notify: [village.leader, village.member, group.member]
    template: rectify_ordered

  # ---- ⑥ 决定 Decide (60 days from filing, +30 on extension) ---------------
  - trigger: extend_decision
    from: filed
    to: decision_extended
    title: 延长决定期限
    description: 案情复杂，经批准延长作出处理决定的期限 30 日。
    roles: [town.leader, district.leader, district.dept_planning, district.dept_agri]
    requires: [extend_reason]
    payload:
      extend_reason: {type: text, title: 延期理由}
    notify: [district.office]
    template: decision_extended

  - trigger: decide
    from: [filed, decision_extended]
    to: rectifying
    title: 作出处理决定
    description: 依法作出处理决定，明确整改方式和整改期限。
    roles: [town.leader, town.office, district.office, district.dept_planning, district.dept_agri]
    requires: [decision, rectify_kind, rectify_by]
    payload:
      decision: {type: text, title: 处理决定}
      rectify_kind: {type: enum, title: 整改方式, values: [拆除, 恢复原状, 复耕]}
      rectify_by: {type: date, title: 整改期限}
    notify: [village.leader, village.member, group.member, town.office]
    template: rectify_ordered

  # ---- ⑦ 整改 Rectify -------------------------------------------------------
  - trigger: rectified
    from: rectifying
    to: rectify_check
    title: 整改完成，申请验收
    description: 已拆除违法建设、恢复原状或复耕，提交记录和照片，申请镇（街道）验收。
    roles: [group.member, village.member, village.leader, town.office]
    requires: [demolition_record]
    payload:
      demolition_record: {type: text, title: 拆除及复耕记录}
      rectify_photos: {type: list, items: string, title: 整改后照片}
    notify: [town.leader, town.office]
    template: rectify_done

  # ---- ⑧ 验收 Verify the rectification -------------------------------------
  - trigger: accept
    from: rectify_check
    to: closed
    title: 验收合格，销号
    roles: [town.leader, town.office]
    requires: [check_note]
    payload:
      check_note: {type: text, title: 整改验收意见}
    notify: [village.leader, town.leader, district.office]
    template: case_closed

  - trigger: reject
    from: rectify_check
    to: rectifying
    title: 验收不合格，退回整改
    description: 整改不到位，退回继续整改，并重新确定整改期限。
    roles: [town.leader, town.office]
    requires: [check_note, rectify_by]
    payload:
      check_note: {type: text, title: 整改验收意见}
      rectify_by: {type: date, title: 新的整改期限}
    notify: [village.leader, village.member, group.member]
    template: rectify_rejected
', 'workflows/farmland_violation.yaml', '2026-09-18 00:30:00.000000');
INSERT INTO "workflow_activations" ("workflow", "definition_id", "activated_at", "path") VALUES ('farmland_violation', 1, '2026-09-18 00:30:00.000000', 'workflows/farmland_violation.yaml');
INSERT INTO "cases" ("id", "workflow", "definition_id", "state", "unit_code", "data", "revision", "escalation_level", "opened_at", "state_entered_at", "closed_at", "deadline_at", "head_hash", "updated_at", "created_by") VALUES ('C20260918-0001', 'farmland_violation', 1, 'stop_failed', 'ddk-bq-xh-1', '{"address":"新华村一组 12 号旁","land_type":"永久基本农田","area_m2":4000,"source":"村级巡查","stop_note":"当事人拒绝停工"}', 2, 0, '2026-09-18 01:00:00.000000', '2026-09-18 01:20:00.000000', NULL, '2026-09-18 03:20:00.000000', 'b9ca3010022e2400bcca8e6acd8a8a3cf21d740fff37caabd96576c95985d601', '2026-09-18 01:20:00.000000', 'p-bq-xh-1-member');
INSERT INTO "history" ("case_id", "seq", "at", "actor", "trigger", "from_state", "to_state", "payload", "definition_id", "prev_hash", "hash", "hash_scheme") VALUES ('C20260918-0001', 1, '2026-09-18 01:00:00.000000', 'p-bq-xh-1-member', 'create', NULL, 'discovered', '{"address":"新华村一组 12 号旁","land_type":"永久基本农田","area_m2":4000,"source":"村级巡查"}', 1, '0000000000000000000000000000000000000000000000000000000000000000', 'ab76aa7a091f9b4b64e8a3742aeb9f876714e6fef5a619846c9a0179be9ddb7a', 2);
INSERT INTO "history" ("case_id", "seq", "at", "actor", "trigger", "from_state", "to_state", "payload", "definition_id", "prev_hash", "hash", "hash_scheme") VALUES ('C20260918-0001', 2, '2026-09-18 01:20:00.000000', 'p-bq-xh-1-member', 'stop_fail', 'discovered', 'stop_failed', '{"stop_note":"当事人拒绝停工"}', 1, 'ab76aa7a091f9b4b64e8a3742aeb9f876714e6fef5a619846c9a0179be9ddb7a', 'b9ca3010022e2400bcca8e6acd8a8a3cf21d740fff37caabd96576c95985d601', 2);
INSERT INTO "state_entries" ("case_id", "state", "first_entered_at") VALUES ('C20260918-0001', 'discovered', '2026-09-18 01:00:00.000000');
INSERT INTO "state_entries" ("case_id", "state", "first_entered_at") VALUES ('C20260918-0001', 'stop_failed', '2026-09-18 01:20:00.000000');
INSERT INTO "timers" ("case_id", "state", "case_revision", "kind", "rung", "deadline_at", "due_at", "repeat_seconds", "status", "created_at", "fired_at", "fired_by", "rule_id", "period_start", "detail", "attempts", "last_error", "next_attempt_at") VALUES ('C20260918-0001', 'stop_failed', 2, 'deadline', NULL, '2026-09-18 03:20:00.000000', '2026-09-18 03:20:00.000000', NULL, 'pending', '2026-09-18 01:20:00.000000', NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL);
INSERT INTO "id_counters" ("prefix", "day", "last") VALUES ('C', '20260918', 1);
