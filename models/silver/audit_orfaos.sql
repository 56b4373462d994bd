{{ config(alias='orfaos', materialized='view') }}

-- Every deduplicated bronze row that silver excludes because a reference does not resolve,
-- with the reason. A view: always in step with bronze and silver, and free to build.

with

silver_imoveis as (
    select imovel_id from {{ ref('stg_imoveis') }}
),

silver_moradores as (
    select morador_id from {{ ref('stg_moradores') }}
),

silver_transacoes as (
    select transacao_id from {{ ref('stg_transacoes') }}
),

latest_imoveis as (
    {{ latest_version_by_id(source('bronze', 'imoveis'), 'imovel_id') }}
),

latest_moradores as (
    {{ latest_version_by_id(source('bronze', 'moradores'), 'morador_id') }}
),

latest_transacoes as (
    {{ latest_version_by_id(source('bronze', 'transacoes'), 'transacao_id') }}
),

orphan_imoveis as (
    select
        'imoveis' as entidade,
        latest_imoveis.imovel_id as registro_id,
        'condominio_inexistente' as motivo,
        latest_imoveis.condominio_id,
        cast(null as integer) as imovel_id,
        cast(null as integer) as morador_id,
        {{ lineage_columns('latest_imoveis') }}
    from latest_imoveis
    left join silver_imoveis
        on latest_imoveis.imovel_id = silver_imoveis.imovel_id
    where silver_imoveis.imovel_id is null
),

orphan_moradores as (
    select
        'moradores' as entidade,
        latest_moradores.morador_id as registro_id,
        'condominio_inexistente' as motivo,
        latest_moradores.condominio_id,
        cast(null as integer) as imovel_id,
        cast(null as integer) as morador_id,
        {{ lineage_columns('latest_moradores') }}
    from latest_moradores
    left join silver_moradores
        on latest_moradores.morador_id = silver_moradores.morador_id
    where silver_moradores.morador_id is null
),

orphan_transacoes as (
    select
        'transacoes' as entidade,
        latest_transacoes.transacao_id as registro_id,
        concat_ws(
            ', ',
            case
                when latest_imoveis.imovel_id is null then 'imovel_inexistente'
                when silver_imoveis.imovel_id is null then 'imovel_excluido'
            end,
            case
                when latest_moradores.morador_id is null then 'morador_inexistente'
                when silver_moradores.morador_id is null then 'morador_excluido'
            end
        ) as motivo,
        cast(null as integer) as condominio_id,
        latest_transacoes.imovel_id,
        latest_transacoes.morador_id,
        {{ lineage_columns('latest_transacoes') }}
    from latest_transacoes
    left join silver_transacoes
        on latest_transacoes.transacao_id = silver_transacoes.transacao_id
    left join latest_imoveis
        on latest_transacoes.imovel_id = latest_imoveis.imovel_id
    left join silver_imoveis
        on latest_transacoes.imovel_id = silver_imoveis.imovel_id
    left join latest_moradores
        on latest_transacoes.morador_id = latest_moradores.morador_id
    left join silver_moradores
        on latest_transacoes.morador_id = silver_moradores.morador_id
    where silver_transacoes.transacao_id is null
),

orphans as (
    select * from orphan_imoveis
    union all
    select * from orphan_moradores
    union all
    select * from orphan_transacoes
),

final as (
    select
        {{ as_text('orphans.entidade') }} as entidade,
        cast(orphans.registro_id as integer) as registro_id,
        {{ as_text('orphans.motivo') }} as motivo,
        cast(orphans.condominio_id as integer) as condominio_id,
        cast(orphans.imovel_id as integer) as imovel_id,
        cast(orphans.morador_id as integer) as morador_id,
        orphans._source_file,
        orphans._source_line,
        orphans._load_id,
        orphans._loaded_at,
        orphans._repaired
    from orphans
)

select * from final
